"""The gate's pure judgement: signatures, four-eyes, plan hash, quorum with groups, the calendar.

The workflow decides with exactly these functions, so these tests are about production
behaviour. Keys are real Ed25519 keys (tests/identities.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.calendar import frozen_until
from contracts.gate import check_identity, judge_approval, judge_request, judge_resolution, quorum_met, still_needed
from contracts.policy import BUILT_IN_POLICIES, Freeze, Policy
from contracts.request import DocumentError
from contracts.run import Decision, DecisionInput
from contracts.signing import sign
from tests.identities import KEYRING, policies, policy_document

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday
PROD = policies().policy_for("prod")
assert PROD is not None
TWO_GROUPS = policies(prod={"requiredApprovals": 2, "quorum": {"dba": 1, "owners": 1}}).policy_for("prod")
assert TWO_GROUPS is not None


def signed(
    actor: str = "bob", decision: Decision = Decision.APPROVE, run: str = "run-1", **fields: object
) -> DecisionInput:
    unsigned = DecisionInput(actor=actor, plan_hash="h1", **fields)  # type: ignore[arg-type]
    return KEYRING.sign_decision(run, decision, unsigned, now=NOW.timestamp())


def identity(input: DecisionInput, policy: Policy = PROD, run: str = "run-1", seen: set[str] | None = None) -> str:
    verdict = check_identity(
        policy,
        actor=input.actor,
        payload=input.signature_payload(run, Decision.APPROVE),
        signature=input.signature,
        attempt_id=input.attempt_id,
        expires_at=input.expires_at,
        now=NOW,
        seen_attempts=seen or set(),
    )
    return "ok" if verdict.accepted else verdict.reason


def test_a_decision_signed_with_the_actors_registered_key_verifies() -> None:
    assert "ok" == identity(signed())


def test_unsigned_forged_expired_replayed_and_wrong_key_decisions_are_refused_with_their_reason() -> None:
    good = signed()
    forged = good.model_copy(update={"plan_hash": "h2"})  # the signature covered h1
    as_alice = good.model_copy(update={"actor": "alice"})  # bob's signature, alice's name
    bob_key = KEYRING.private_key("bob")
    assert bob_key is not None
    claims_alice = as_alice.model_copy(
        update={"signature": sign(bob_key, as_alice.signature_payload("run-1", Decision.APPROVE))}
    )
    assert identity(good.model_copy(update={"signature": ""})).startswith("unsigned: prod requires signed decisions")
    assert identity(forged).startswith("invalid signature")
    assert identity(as_alice).startswith("invalid signature")
    assert "signed with bob's key, not alice's" == identity(claims_alice)
    assert identity(good, seen={good.attempt_id}).startswith("replayed")
    assert identity(good, run="run-2").startswith("invalid signature"), "a signature is bound to its run"
    stale = KEYRING.sign_decision("run-1", Decision.APPROVE, DecisionInput(actor="bob"), now=NOW.timestamp() - 3600)
    assert identity(stale).startswith("expired")
    assert identity(signed("eve")) == "eve has no registered public key in the prod policy"


def test_a_signature_for_one_decision_does_not_count_for_another() -> None:
    reject = signed(decision=Decision.REJECT)
    assert identity(reject).startswith("invalid signature")


def test_an_expiry_further_ahead_than_the_policy_allows_is_refused() -> None:
    far = KEYRING.sign_decision("run-1", Decision.APPROVE, DecisionInput(actor="bob"), now=NOW.timestamp() + 7200)
    assert identity(far).startswith("the signature's expiry is too far ahead")


def test_unsigned_decisions_are_accepted_where_signatures_are_not_required_but_bad_ones_never() -> None:
    dev = policies().policy_for("dev")
    assert dev is not None
    assert "ok" == identity(DecisionInput(actor="anyone"), dev)
    assert identity(signed().model_copy(update={"plan_hash": "h9"}), dev).startswith("invalid signature")


def approve(policy: Policy, actor: str, approved_by: list[str], requester: str = "alice") -> tuple[bool, str]:
    verdict = judge_approval(
        policy,
        actor=actor,
        plan_hash="h1",
        current_plan_hash="h1",
        requester=requester,
        approved_by=approved_by,
        now=NOW,
        deadline=NOW + timedelta(hours=1),
    )
    return verdict.accepted, verdict.reason


def test_the_requester_never_counts_in_any_spelling() -> None:
    for spelling in ("alice", "Alice", "ALICE"):
        accepted, reason = approve(PROD, spelling, [])
        assert (False, "four-eyes: the requester cannot approve their own run") == (accepted, reason)


def test_an_approval_of_another_plan_or_after_the_deadline_is_refused() -> None:
    stale = judge_approval(
        PROD,
        actor="bob",
        plan_hash="h0",
        current_plan_hash="h1",
        requester="alice",
        approved_by=[],
        now=NOW,
        deadline=None,
    )
    late = judge_approval(
        PROD,
        actor="bob",
        plan_hash="h1",
        current_plan_hash="h1",
        requester="alice",
        approved_by=[],
        now=NOW,
        deadline=NOW,
    )
    assert stale.reason.startswith("plan hash mismatch")
    assert late.reason.startswith("too late")


def test_quorum_with_groups_needs_one_of_each_and_a_wrong_group_does_not_count() -> None:
    """prod here: one from dba and one from owners. bob and dave are dba, carol is owners."""
    assert TWO_GROUPS is not None
    assert (True, "approved") == approve(TWO_GROUPS, "bob", [])
    accepted, reason = approve(TWO_GROUPS, "dave", ["bob"])
    assert not accepted
    assert "it needs 1 from owners; dave is in dba" in reason
    assert not quorum_met(TWO_GROUPS, ["bob"])
    assert (True, "approved") == approve(TWO_GROUPS, "carol", ["bob"])
    assert quorum_met(TWO_GROUPS, ["bob", "carol"])
    assert "" == still_needed(TWO_GROUPS, ["bob", "carol"])
    assert "1 from dba, 1 from owners" == still_needed(TWO_GROUPS, [])


def test_the_same_approver_counts_once() -> None:
    assert (False, "bob has already approved this plan") == approve(PROD, "bob", ["bob"])


def test_marking_done_or_aborting_your_own_run_needs_a_second_person_where_approvals_are_required() -> None:
    dev = BUILT_IN_POLICIES.policy_for("dev")
    assert dev is not None
    assert not judge_resolution(PROD, actor="alice", resolution="mark_done", requester="alice").accepted
    assert not judge_resolution(PROD, actor="Alice", resolution="abort", requester="alice").accepted
    assert judge_resolution(PROD, actor="alice", resolution="retry", requester="alice").accepted
    assert judge_resolution(PROD, actor="bob", resolution="mark_done", requester="alice").accepted
    assert judge_resolution(dev, actor="alice", resolution="mark_done", requester="alice").accepted


def test_a_request_is_signed_by_its_requester_and_break_glass_needs_the_policys_leave() -> None:
    from contracts.request import parse_request
    from contracts.run import RunInput

    request = parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "RotateDbCredential",
            "metadata": {"environment": "prod", "requester": "alice"},
            "spec": {"database": "app", "role": "r", "secretId": "s"},
        }
    )

    def judge(input: RunInput, run: str = "run-1", requester: str = "alice") -> str:
        sig = input.signature
        assert sig is not None
        verdict = judge_request(
            PROD,
            requester=requester,
            payload=input.signature_payload(run, sig.attempt_id, sig.expires_at),
            signature=sig.signature,
            attempt_id=sig.attempt_id,
            expires_at=sig.expires_at,
            emergency=input.emergency,
            now=NOW,
        )
        return "ok" if verdict.accepted else verdict.reason

    good = KEYRING.sign_request(RunInput(request=request), "run-1", now=NOW.timestamp())
    assert "ok" == judge(good)
    assert "the request's signature: signed with alice's key, not bob's" == judge(good, requester="bob")
    loosened = good.model_copy(update={"emergency": "db on fire"})  # added after signing
    assert judge(loosened).startswith("the request's signature: invalid signature")
    emergency = KEYRING.sign_request(RunInput(request=request, emergency="db on fire"), "run-1", now=NOW.timestamp())
    assert "break-glass is not allowed in prod: the run needs approval" == judge(emergency)


def test_weekly_and_dated_freezes_chain_and_say_until_when() -> None:
    freeze = Freeze.model_validate(
        {
            "weekly": [{"days": ["tue"], "start": "11:00", "end": "13:00", "reason": "tuesday standup freeze"}],
            "dates": [{"start": "2026-12-01T13:00:00Z", "end": "2026-12-01T15:00:00Z", "reason": "launch"}],
        }
    )
    assert (datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "tuesday standup freeze") == frozen_until(freeze, NOW)
    assert (datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "launch") == frozen_until(freeze, NOW + timedelta(hours=2))
    assert frozen_until(freeze, NOW + timedelta(hours=3)) is None
    assert frozen_until(freeze, NOW - timedelta(days=1)) is None


def test_a_weekend_freeze_ending_at_midnight_covers_the_whole_days() -> None:
    weekend = Freeze.model_validate({"weekly": [{"days": ["sat", "sun"], "reason": "weekend"}]})
    saturday = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    assert (datetime(2026, 12, 7, 0, 0, tzinfo=UTC), "weekend") == frozen_until(weekend, saturday)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"groups": {"dba": ["mallory"]}}, "groups.dba: mallory has no entry under identities"),
        ({"environments": {"prod": {"quorum": {"sre": 1}}}}, "environments.prod.quorum: unknown group 'sre'"),
        (
            {"environments": {"prod": {"requiredApprovals": 1, "quorum": {"dba": 1, "owners": 1}}}},
            "requiredApprovals is 1",
        ),
        ({"identities": {"bob": {"publicKey": "ssh-rsa AAAA"}}}, "ed25519:<base64>"),
        ({"environments": {"prod": {"requiredApprovals": -1}}}, "environments.prod.requiredApprovals"),
        ({"environments": {"prod": {"freeze": {"weekly": [{"days": ["someday"]}]}}}}, "days.0"),
        ({"surprise": True}, "surprise: unknown field"),
        ({"environments": {"prod": {"approvalTimeoutSeconds": 10**20}}}, "approvalTimeoutSeconds"),
        ({"environments": {"prod": {"freeze": {"weekly": [{"days": ["fri"], "start": "16:00+05:00"}]}}}}, "UTC"),
        ({"identities": {"bob\u200b": {"publicKey": "ed25519:" + "A" * 43 + "="}}}, "is not a plain name"),
    ],
)
def test_a_broken_policy_file_is_refused_naming_the_problem(change: dict[str, object], problem: str) -> None:
    import yaml

    from contracts.policy import parse_policy_file

    document = {**policy_document(), **change}
    with pytest.raises(DocumentError) as raised:
        parse_policy_file(yaml.safe_dump(document), "policy.yaml")
    assert problem in str(raised.value)


def test_only_someone_who_could_approve_may_mark_a_run_done() -> None:
    owners_only = policies(prod={"requiredApprovals": 1, "quorum": {"owners": 1}}).policy_for("prod")
    assert owners_only is not None
    refused = judge_resolution(owners_only, actor="bob", resolution="mark_done", requester="alice")
    assert (False, "bob could not approve runs in prod, so cannot mark done one either") == (
        refused.accepted,
        refused.reason,
    )
    assert judge_resolution(owners_only, actor="carol", resolution="mark_done", requester="alice").accepted


def test_one_key_under_two_names_is_refused_so_nobody_passes_four_eyes_alone() -> None:
    import yaml

    from contracts.policy import parse_policy_file

    document = policy_document()
    document["identities"]["alice-ops"] = document["identities"]["alice"]
    with pytest.raises(DocumentError) as raised:
        parse_policy_file(yaml.safe_dump(document), "policy.yaml")
    assert "alice and alice-ops have the same public key" in str(raised.value)


async def test_a_worker_gives_no_policy_for_an_environment_it_does_not_serve() -> None:
    from activities.policy import PolicyActivities, ResolvePolicyInput

    prod_only = PolicyActivities(policies(), "policy.yaml", environments=["prod"], check_id_reuse=False)
    dev = await prod_only.resolve_policy(ResolvePolicyInput(environment="dev"))
    prod = await prod_only.resolve_policy(ResolvePolicyInput(environment="prod"))
    assert dev.policy is None
    assert "policy.yaml, as this worker serves only prod" == dev.policy_source
    assert prod.policy is not None


def test_one_key_spelled_two_ways_in_base64_is_still_one_key() -> None:
    """The last base64 digit before '=' has unused bits: two strings, the same 32 bytes."""
    import base64

    import yaml

    from contracts.policy import parse_policy_file

    document = policy_document()
    raw = base64.b64decode(document["identities"]["bob"]["publicKey"].split(":", 1)[1])
    canonical = base64.b64encode(raw).decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = canonical[:-2] + alphabet[alphabet.index(canonical[-2]) ^ 1] + "="
    assert twin != canonical
    assert raw == base64.b64decode(twin)
    document["identities"]["robert"] = {"publicKey": "ed25519:" + twin}
    with pytest.raises(DocumentError) as raised:
        parse_policy_file(yaml.safe_dump(document), "policy.yaml")
    assert "bob and robert have the same public key" in str(raised.value)


async def test_an_environment_that_needs_no_approval_is_served_only_when_listed() -> None:
    from activities.policy import PolicyActivities, ResolvePolicyInput

    unlisted = PolicyActivities(policies(), "policy.yaml", check_id_reuse=False)
    listed = PolicyActivities(policies(), "policy.yaml", environments=["dev"], check_id_reuse=False)
    assert (await unlisted.resolve_policy(ResolvePolicyInput(environment="dev"))).policy is None
    assert (await unlisted.resolve_policy(ResolvePolicyInput(environment="prod"))).policy is not None
    assert (await listed.resolve_policy(ResolvePolicyInput(environment="dev"))).policy is not None
