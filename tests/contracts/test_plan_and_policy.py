"""Plan hashing and the approval judgement: pure functions the workflow relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.phases import IllegalTransition, Phase, check_transition
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.policy import POLICIES, Policy, judge_approval


def plan(reason: str = "stage a new password", observed: dict[str, str] | None = None) -> Plan:
    return Plan(
        kind="RotateDbCredential",
        target="role app/app_user",
        actions=[
            PlannedAction(
                action=Action.CREATE,
                resource_type="secretsmanager:secret-version",
                resource_id="demo/app_user",
                reason=reason,
                reversible=True,
                rollback=Rollback.COMPENSATE,
                observed=observed or {"current_version_id": "v1", "pending": "none"},
            )
        ],
    )


def test_the_plan_hash_is_stable_for_the_same_plan() -> None:
    assert plan().hash() == plan().hash()
    assert plan().hash() == plan(observed={"pending": "none", "current_version_id": "v1"}).hash()
    assert 64 == len(plan().hash())


def test_any_change_to_the_plan_changes_its_hash() -> None:
    assert plan().hash() != plan(reason="something else").hash()
    assert plan().hash() != plan(observed={"current_version_id": "v2", "pending": "none"}).hash()


def test_a_plan_of_noops_has_no_changes() -> None:
    noop = Plan(kind="K", target="t", actions=[plan().actions[0].model_copy(update={"action": Action.NOOP})])
    assert not noop.has_changes
    assert plan().has_changes


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROD = POLICIES["prod"]


def judge(actor: str = "bob", plan_hash: str = "h1", **overrides: object) -> tuple[bool, str]:
    arguments: dict[str, object] = {
        "actor": actor,
        "plan_hash": plan_hash,
        "requester": "alice",
        "current_plan_hash": "h1",
        "policy": PROD,
        "approved_by": [],
        "now": NOW,
        "deadline": NOW + timedelta(hours=1),
    }
    arguments.update(overrides)
    verdict = judge_approval(**arguments)  # type: ignore[arg-type]
    return verdict.accepted, verdict.reason


def test_a_second_person_approving_the_current_plan_is_accepted() -> None:
    assert (True, "approved") == judge()


def test_the_requester_cannot_approve_their_own_run_in_any_spelling() -> None:
    for spelling in ("alice", "Alice", "ALICE"):
        accepted, reason = judge(actor=spelling)
        assert not accepted
        assert reason.startswith("four-eyes")


def test_an_approval_of_another_plan_hash_is_refused() -> None:
    accepted, reason = judge(plan_hash="h0")
    assert not accepted
    assert reason.startswith("plan hash mismatch")


def test_an_approval_at_or_after_the_deadline_is_refused() -> None:
    accepted, reason = judge(deadline=NOW)
    assert not accepted
    assert reason.startswith("too late")


def test_only_listed_approvers_may_approve_when_the_policy_has_a_list() -> None:
    strict = Policy(environment="prod", required_approvals=1, approval_timeout_seconds=60, allowed_approvers=("carol",))
    assert not judge(policy=strict)[0]
    assert judge(actor="carol", policy=strict)[0]


def test_the_same_approver_counts_once() -> None:
    accepted, reason = judge(approved_by=["bob"])
    assert not accepted
    assert "already approved" in reason


def test_dev_needs_no_approval_and_prod_needs_one() -> None:
    assert 0 == POLICIES["dev"].required_approvals
    assert 1 <= POLICIES["prod"].required_approvals


def test_an_impossible_phase_transition_raises() -> None:
    assert Phase.PLANNING == check_transition(Phase.VALIDATING, Phase.PLANNING)
    with pytest.raises(IllegalTransition):
        check_transition(Phase.AWAITING_APPROVAL, Phase.APPLYING)
    with pytest.raises(IllegalTransition):
        check_transition(Phase.SUCCEEDED, Phase.APPLYING)


def test_noop_entries_are_context_and_stay_out_of_the_hash() -> None:
    """A skipped resource appearing or vanishing does not void an approval; a changed deletion does."""
    skipped = PlannedAction(
        action=Action.NOOP,
        resource_type="ec2:volume",
        resource_id="1 volumes",
        reason="skipped: attached",
        reversible=True,
        rollback=Rollback.NONE,
        resource_ids=["vol-1"],
    )
    with_skip = plan().model_copy(update={"actions": [*plan().actions, skipped]})
    only_skip = plan().model_copy(update={"actions": [skipped]})
    assert plan().hash() == with_skip.hash()
    assert plan().hash() != only_skip.hash()
