"""The run's record on its own: judgement of each decision by phase, derived answers, phase changes.

No Temporal here: the record takes its clock and its search-attribute sink as arguments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.phases import IllegalTransition, Phase
from contracts.policy import Policy
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput, ResolveInput, RunState
from tests.identities import KEYRING, policies
from workflows.run_record import RunRecord

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
published: list[dict[str, Any]] = []  # what the record sent to search attributes


def record(environment: str = "prod", phase: Phase = Phase.AWAITING_APPROVAL, **policy: Any) -> RunRecord:
    request = parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "RotateDbCredential",
            "metadata": {"environment": environment, "requester": "alice"},
            "spec": {"database": "app", "role": "r", "secretId": "s"},
        }
    )
    state = RunState(
        workflow_id="wf-1",
        first_run_id="run-1",
        kind=request.kind,
        mode="apply",
        environment=environment,
        requester="alice",
        phase=phase,
        request=request,
        plan_hash="h1",
        approval_deadline=NOW + timedelta(hours=1),
    )
    chosen: Policy | None = policies(**({environment: policy} if policy else {})).policy_for(environment)
    return RunRecord(state, chosen, clock=lambda: NOW, publish=published.append)


def decide(run: RunRecord, decision: Decision, actor: str = "bob", **fields: Any) -> tuple[bool, str]:
    input = (ResolveInput if "resolution" in fields else DecisionInput)(actor=actor, plan_hash="h1", **fields)
    signed = KEYRING.sign_decision(run.state.decision_scope, decision, input, now=NOW.timestamp())
    kept = run.decide(decision, signed)
    return kept.accepted, kept.reason


def test_every_attempt_is_kept_accepted_or_refused_with_its_reason() -> None:
    run = record()
    assert (False, "four-eyes: the requester cannot approve their own run") == decide(run, Decision.APPROVE, "alice")
    assert (True, "approved") == decide(run, Decision.APPROVE, "bob")
    assert [("alice", False), ("bob", True)] == [(d.actor, d.accepted) for d in run.state.decisions]
    assert [True, True] == [d.signed for d in run.state.decisions]
    assert run.approved
    assert ["dba"] == run.state.decisions[1].groups


def test_a_decision_in_the_wrong_phase_is_refused_and_says_which_phase() -> None:
    run = record(phase=Phase.APPLYING)
    assert (False, "no plan is awaiting approval (phase applying)") == decide(run, Decision.APPROVE)
    assert (False, "nothing to reject in phase applying") == decide(run, Decision.REJECT)
    assert (False, "nothing to resolve in phase applying") == decide(
        run, Decision.RETRY, resolution=Decision.RETRY, comment="c"
    )


def test_a_cancel_is_accepted_until_verify_and_never_while_undoing() -> None:
    run = record(phase=Phase.APPLYING)
    assert decide(run, Decision.CANCEL)[0]
    assert run.cancel_request is not None
    undoing = record(phase=Phase.APPLYING)
    undoing.enter(Phase.COMPENSATING)
    assert (False, "already undoing the applied changes") == decide(undoing, Decision.CANCEL)
    late = record(phase=Phase.VERIFYING)
    assert (False, "cannot cancel in phase verifying") == decide(late, Decision.CANCEL)


def test_a_resolution_counts_only_for_the_review_it_answers() -> None:
    run = record(phase=Phase.APPLYING)
    run.enter(Phase.NEEDS_REVIEW)
    assert decide(run, Decision.RETRY, "carol", resolution=Decision.RETRY, comment="checked")[0]
    assert run.resolution is not None
    run.enter(Phase.APPLYING)
    run.enter(Phase.NEEDS_REVIEW)
    assert run.resolution is None, "the earlier retry answered the earlier review"


def test_voiding_approvals_says_whose_and_why() -> None:
    run = record()
    decide(run, Decision.APPROVE, "bob")
    assert ["bob"] == run.void_approvals("the plan changed before apply")
    assert not run.approved
    assert "the plan changed before apply" == run.state.decisions[0].voided


def test_without_a_policy_nothing_can_be_decided() -> None:
    run = record()
    run.policy = None
    assert (False, "no policy for environment prod: nothing can be decided") == decide(run, Decision.APPROVE)


def test_phase_changes_go_through_the_state_machine_and_are_published() -> None:
    run = record(phase=Phase.PLANNING)
    published.clear()
    run.enter(Phase.AWAITING_APPROVAL)
    assert "awaiting_approval" == published[-1]["OpsctlPhase"]
    assert False is published[-1]["OpsctlEmergency"]
    assert NOW == run.state.phase_times["awaiting_approval"]
    with pytest.raises(IllegalTransition):
        run.enter(Phase.APPLYING)


def test_a_flood_of_unsigned_attempts_cannot_grow_the_state_past_its_bound() -> None:
    from workflows.run_record import KEPT_DECISIONS

    run = record()
    decide(run, Decision.APPROVE, "bob")
    for _ in range(KEPT_DECISIONS + 50):
        run.decide(Decision.APPROVE, DecisionInput(actor="mallory" * 1000, plan_hash="h1", comment="x" * 100_000))
    assert KEPT_DECISIONS == len(run.state.decisions)
    assert 51 == run.state.decisions_not_kept
    assert run.state.decisions[0].accepted, "accepted decisions are never dropped"
    assert all(len(d.comment) <= 1000 and len(d.actor) <= 100 for d in run.state.decisions)


def test_forgetting_old_refusals_never_loses_the_answer_to_the_open_review() -> None:
    from workflows.run_record import KEPT_DECISIONS

    run = record(phase=Phase.APPLYING)
    for _ in range(KEPT_DECISIONS):
        run.decide(Decision.CANCEL, DecisionInput(actor="mallory", signature="forged", attempt_id="x"))
    run.enter(Phase.NEEDS_REVIEW)
    assert decide(run, Decision.RETRY, "carol", resolution=Decision.RETRY, comment="checked")[0]
    assert run.resolution is not None
    assert "carol" == run.resolution.actor


@pytest.mark.parametrize(
    ("name", "args", "decision", "reason"),
    [
        ("approve", [], Decision.APPROVE, "approve takes one input (a JSON object), got 0"),
        ("approve", [{"actor": "bob"}, 1], Decision.APPROVE, "approve takes one input (a JSON object), got 2"),
        ("reject", ["yes"], Decision.REJECT, "got a JSON string"),
        ("cancel", [None], Decision.CANCEL, "got a JSON null"),
        ("approve", [{"actor": ""}], Decision.APPROVE, "malformed approve input: input.actor"),
        ("approve", [{"actor": "bob", "plan_hash": 7}], Decision.APPROVE, "input.plan_hash"),
        ("resolve", [{"actor": "bob", "resolution": "undo"}], Decision.INVALID, "input.resolution"),
        ("aprove", [{"actor": "bob"}], Decision.INVALID, "unknown name 'aprove': this run takes approve"),
    ],
)
def test_an_attempt_that_cannot_be_read_is_refused_and_kept_with_the_reason(
    name: str, args: list[Any], decision: Decision, reason: str
) -> None:
    run = record()
    kept = run.receive(name, args, "signal")
    assert (decision, False, "signal") == (kept.decision, kept.accepted, kept.via)
    assert reason in kept.reason
    assert [kept] == run.state.decisions
    assert not run.approved


def test_an_unreadable_attempt_names_its_actor_when_it_can() -> None:
    run = record()
    assert "bob" == run.receive("approve", [{"actor": "bob", "plan_hash": []}], "update").actor
    assert "unknown" == run.receive("approve", [{"actor": 3}], "update").actor


def test_a_readable_attempt_is_judged_like_a_decision() -> None:
    run = record()
    input = KEYRING.sign_decision(
        run.state.decision_scope, Decision.APPROVE, DecisionInput(actor="bob", plan_hash="h1"), now=NOW.timestamp()
    )
    kept = run.receive("approve", [input.model_dump()], "update")
    assert (True, "approved", "update") == (kept.accepted, kept.reason, kept.via)
    assert run.approved


def test_every_change_tells_the_watcher() -> None:
    seen: list[str] = []
    run = record()
    run.changed = lambda: seen.append(run.state.phase.value)
    run.receive("approve", [], "signal")
    run.void_approvals("plan changed")
    run.enter(Phase.REPLANNING)
    assert ["awaiting_approval", "awaiting_approval", "replanning"] == seen


def test_a_flood_of_signed_refusals_cannot_grow_the_state_either() -> None:
    from workflows.run_record import KEPT_DECISIONS

    run = record()
    decide(run, Decision.APPROVE, "bob")
    for _ in range(KEPT_DECISIONS + 50):
        assert not decide(run, Decision.APPROVE, "alice")[0]  # her own run: four-eyes, validly signed
    assert KEPT_DECISIONS == len(run.state.decisions)
    assert 51 == run.state.decisions_not_kept
    assert run.approved, "the accepted approval stays"


def test_a_second_cancel_or_reject_is_refused_as_already_asked() -> None:
    run = record()
    assert decide(run, Decision.CANCEL, "alice")[0]
    assert (False, "a cancel is already requested (by alice)") == decide(run, Decision.CANCEL, "bob")


def test_an_open_wait_says_again_what_it_needs_after_each_decision() -> None:
    run = record()
    run.explain = lambda: f"approved by {', '.join(run.approvers()) or 'nobody'}"
    decide(run, Decision.APPROVE, "bob")
    assert "approved by bob" == run.state.next_action
    run.enter(Phase.REPLANNING)
    assert run.explain is None


def test_a_signed_attempt_forgotten_by_the_state_still_cannot_be_replayed() -> None:
    from workflows.run_record import KEPT_DECISIONS

    run = record(phase=Phase.APPLYING)
    early = KEYRING.sign_decision(
        run.state.decision_scope, Decision.APPROVE, DecisionInput(actor="bob", plan_hash="h1"), now=NOW.timestamp()
    )
    assert not run.decide(Decision.APPROVE, early).accepted  # nothing awaits approval yet
    run.state.phase = Phase.AWAITING_APPROVAL
    for _ in range(KEPT_DECISIONS + 5):  # the requester's own refused approvals push bob's record out
        decide(run, Decision.APPROVE, "alice")
    assert all(d.attempt_id != early.attempt_id for d in run.state.decisions)
    replayed = run.decide(Decision.APPROVE, early)
    assert not replayed.accepted
    assert replayed.reason.startswith("replayed")


def test_seen_attempts_are_forgotten_once_their_signatures_expire() -> None:
    run = record()
    decide(run, Decision.APPROVE, "alice")
    assert 1 == len(run.state.signed_attempts)
    later = NOW + timedelta(days=1)
    run._clock = lambda: later
    fresh = KEYRING.sign_decision(
        run.state.decision_scope, Decision.REJECT, DecisionInput(actor="bob", plan_hash="h1"), now=later.timestamp()
    )
    run.decide(Decision.REJECT, fresh)
    assert [f"{fresh.expires_at}:{fresh.attempt_id}"] == run.state.signed_attempts, "the expired one was dropped"
