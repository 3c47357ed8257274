"""How a run starts: the worker's settings, the first state, and admission before anything happens.

Admission is where the caller's input meets the worker's rules: unknown fields, a forged
continuation, a cron schedule or retry policy, a kind run as another workflow type, an
environment without a policy, and the requester's signature are all refused here, before
the first plan. Nothing in the input can loosen what the worker's policy says.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

from workflows import patches, scheduled
from workflows.ending import stop

with workflow.unsafe.imports_passed_through():
    from activities.policy import PolicyActivities, ResolvePolicyInput
    from activities.schedules import ScheduleStart
    from contracts import kinds
    from contracts.failures import FailureKind
    from contracts.gate import judge_request
    from contracts.phases import Phase
    from contracts.policy import Policy
    from contracts.request import RERUN_LABEL, DocumentError, check_size
    from contracts.run import SHORTEST_WORKFLOW_TIMEOUT_DAYS, Mode, RunInput, RunSettings, RunState

# Runs started with a workflow timeout before they were refused replay as they ran.
REFUSE_WORKFLOW_TIMEOUTS = "admission-refuses-workflow-timeouts"
# Runs started before deprecated versions were judged here replay without that judgement.
JUDGE_DEPRECATED_VERSIONS = "admission-judges-deprecated-versions"
POLICY_TIMEOUT = timedelta(seconds=10)  # a local read of the worker's loaded policy set
# A few tries, not forever: the answer is in memory, so failing to get it is not transient.
POLICY_RETRY = RetryPolicy(maximum_attempts=3)


def continues_itself() -> bool:
    """Is this run a continue-as-new of an opsctl run, whose input the workflow wrote itself?

    Temporal also sets `continued_run_id` on cron runs and workflow retries, and those carry
    the caller's own input: opsctl refuses to start either, so neither can hand over state.
    """
    info = workflow.info()
    return bool(info.continued_run_id) and not info.cron_schedule and info.retry_policy is None


def decide_patches(input: RunInput) -> None:
    """Decide, before the run's first local activity, every patch that admission will ask about.

    A query that lands while that local activity runs can split the first workflow task in two.
    A patch decided after the local activity then has its marker in the second task, and on
    replay the workflow asks for it while replaying the first: Temporal reports nondeterminism
    (TMPRL1100) and the run is wedged. `workflow.patched` remembers its answer, so the later
    calls, under the same conditions, return what was decided here and record nothing more.

    Runs started before admission's patches were decided up front decide them where they are asked.
    """
    if not patches.has(patches.PATCHES_FIRST):
        return  # a run started before this replays as it ran
    if input.schedule is not None:
        workflow.patched(scheduled.SCHEDULED_RUNS)
    if _short_timeouts():
        workflow.patched(REFUSE_WORKFLOW_TIMEOUTS)
    if kinds.deprecation(input.request.kind, input.request.api_version) is not None:
        workflow.patched(JUDGE_DEPRECATED_VERSIONS)


def _short_timeouts() -> list[timedelta]:
    """The workflow timeouts this run was started with (0 is none): opsctl runs take none."""
    info = workflow.info()
    shortest = timedelta(days=SHORTEST_WORKFLOW_TIMEOUT_DAYS)
    return [t for t in (info.execution_timeout, info.run_timeout) if t and t < shortest]


async def resolve_settings(input: RunInput) -> RunSettings:
    """The worker's policy for this environment: a local activity, so the answer is in history.

    A worker that cannot answer leaves the run without a policy, and a run without a policy
    fails admission: fail closed, never stuck.
    """
    try:
        return await workflow.execute_local_activity_method(
            PolicyActivities.resolve_policy,
            ResolvePolicyInput(
                environment=input.request.metadata.environment,
                workflow_id=workflow.info().workflow_id,
                run_id=workflow.info().run_id,
            ),
            start_to_close_timeout=POLICY_TIMEOUT,
            retry_policy=POLICY_RETRY,
            summary="load the environment's policy",
        )
    except FailureError as err:  # local activities may surface their failure without an ActivityError
        cause = err.cause if isinstance(err, ActivityError) and err.cause else err
        # Search attributes off: without the worker's answer we cannot know the namespace has them.
        source = f"the worker, which could not answer ({cause})"
        return RunSettings(policy=None, policy_source=source, search_attributes=False)


def initial_state(input: RunInput) -> RunState:
    request, info = input.request, workflow.info()
    return RunState(
        workflow_id=info.workflow_id,
        first_run_id=info.first_execution_run_id,
        kind=request.kind,
        mode=input.mode,
        environment=request.metadata.environment,
        requester=request.metadata.requester or "",
        phase=Phase.VALIDATING,
        request=request,
        emergency=input.emergency if input.mode is Mode.APPLY else "",
        rerun_of=request.metadata.labels.get(RERUN_LABEL, ""),
        phase_times={Phase.VALIDATING.value: workflow.now()},
    )


def admit(input: RunInput, state: RunState, settings: RunSettings, started: ScheduleStart | None = None) -> Policy:
    """The policy this run obeys, once its input passed every check; else `Stop` with the reason.

    `started`: for an input naming a schedule, what Temporal says about that schedule and this run.
    """
    if input.model_extra:
        names = ", ".join(sorted(input.model_extra))
        raise stop(
            FailureKind.VALIDATION,
            f"the workflow input has fields opsctl does not take: {names}; "
            "policy, identities and limits come from the worker, never from the caller",
        )
    if input.continuation is not None:
        raise stop(FailureKind.VALIDATION, "a continuation is only accepted from this run's own continue-as-new")
    info = workflow.info()
    timeouts = _short_timeouts()
    if timeouts and workflow.patched(REFUSE_WORKFLOW_TIMEOUTS):
        raise stop(
            FailureKind.VALIDATION,
            f"this run was started with a workflow timeout ({min(timeouts)}): Temporal would end it wherever it "
            "stands, with nothing undone; opsctl runs have none (their steps have their own)",
        )
    if info.cron_schedule or info.retry_policy is not None:
        raise stop(
            FailureKind.VALIDATION,
            "opsctl runs are never started with a cron schedule or a workflow retry policy: "
            "each run is one reviewed request (steps retry on their own)",
        )
    if settings.arrived_in_clear:
        raise stop(
            FailureKind.VALIDATION,
            "the request reached Temporal unencrypted, and this worker encrypts every run: its client had no "
            "payload keys (OPSCTL_CODEC_KEYS_FILE or OPSCTL_CODEC_KEYS, or run opsctl where the stack's state "
            "folder is); nothing ran — submit it again with the keys",
        )
    if settings.earlier_run:
        raise stop(
            FailureKind.POLICY_DENIED,
            f"workflow id {info.workflow_id} was used by an earlier run ({settings.earlier_run}): a signed "
            "request counts for one execution; submit it again with a new idempotencyKey",
        )
    if input.request.kind != info.workflow_type:
        raise stop(FailureKind.VALIDATION, f"a {input.request.kind} request cannot run as {info.workflow_type}")
    _judge_version(input, state)
    try:  # the CLI checks this before starting; a raw `temporal workflow start` is checked here
        check_size(input.request)
    except DocumentError as exc:
        raise stop(FailureKind.VALIDATION, str(exc)) from None
    policy = settings.policy
    if policy is None:
        raise stop(
            FailureKind.VALIDATION, f"no policy for environment {state.environment!r} in {settings.policy_source}"
        )
    # A manual run's signature names its workflow id; a schedule's names the schedule, and counts only
    # for runs the schedule started (`workflows.scheduled`), for as long as the policy lets schedules last.
    scope, as_signed, max_age = state.workflow_id, input, None
    if input.schedule is not None:
        if started is None:
            raise stop(FailureKind.POLICY_DENIED, "a scheduled request whose schedule could not be checked")
        scope, as_signed = scheduled.admit(input, state, started)
        max_age = policy.schedule_max_age_seconds
    signed = input.signature
    attempt, expires, signature = (signed.attempt_id, signed.expires_at, signed.signature) if signed else ("", 0, "")
    verdict = judge_request(
        policy,
        requester=state.requester,
        payload=as_signed.signature_payload(scope, attempt, expires),
        signature=signature,
        attempt_id=attempt,
        expires_at=expires,
        emergency=input.emergency,
        # When the request reached Temporal, not when a worker got to it: a worker that was
        # down for a while must not turn a valid request into an expired one.
        now=info.workflow_start_time,
        max_age_seconds=max_age,
    )
    if not verdict.accepted:
        raise stop(FailureKind.POLICY_DENIED, verdict.reason)
    state.requester_verified = verdict.signed
    return policy


def _judge_version(input: RunInput, state: RunState) -> None:
    """The kind must have the request's version, and a deprecated one must still be accepted.

    Judged at the moment the request reached Temporal (as its signature is), not when a worker
    got to it; a run admitted before the date goes on to its end, across continue-as-new too.
    """
    request = input.request
    if kinds.version(request.kind, request.api_version) is None:
        raise stop(FailureKind.VALIDATION, str(kinds.unknown_version(request.kind, request.api_version)))
    if kinds.deprecation(request.kind, request.api_version) is None or not workflow.patched(JUDGE_DEPRECATED_VERSIONS):
        return
    try:
        state.warnings.extend(
            kinds.check_accepted(request.kind, request.api_version, workflow.info().workflow_start_time)
        )
    except DocumentError as exc:
        raise stop(FailureKind.VALIDATION, str(exc)) from None
