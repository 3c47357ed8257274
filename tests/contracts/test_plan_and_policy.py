"""Plan hashing and the phase machine: pure functions the workflow relies on (the gate: test_gate.py)."""

from __future__ import annotations

import pytest

from contracts.phases import IllegalTransition, Phase, check_transition
from contracts.plan import Action, Plan, PlannedAction, Rollback


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
