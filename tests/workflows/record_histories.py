"""Record workflow histories for the replay tests: `python -m tests.workflows.record_histories [NAME…]`.

Run it when a workflow change is deliberate (and guarded by `workflow.patched`), then
commit the new JSON beside the old: old histories must keep replaying. Names pick scenarios
(default: all of them, the policy probe included).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.rotate_credential import RotationStepInput, StepResult
from contracts.phases import Phase
from contracts.run import Decision, DecisionInput, ResolveInput, RunState
from tests.identities import KEYRING, policy_activities
from tests.workflows.conftest import time_skipping_server
from tests.workflows.test_lifecycle import FakeRotation, run_input, send, temporal_cancel_kept, until_phase
from worker.converter import DATA_CONVERTER
from workflows.policy_probe import PolicyProbe
from workflows.rotate_credential import RotateDbCredential

HISTORIES = Path(__file__).parent / "histories"
Handle = WorkflowHandle[Any, RunState]


async def record(names: list[str]) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=time_skipping_server()
    )
    async with env:
        for name, scenario in SCENARIOS.items():
            if names and name not in names:
                continue
            queue = uuid.uuid4().hex
            fake = scenario["fake"]()  # type: ignore[operator]
            async with Worker(
                env.client, task_queue=queue, workflows=[RotateDbCredential], activities=fake.activities()
            ):
                workflow_id, now = f"replay-{name}", (await env.get_current_time()).timestamp()
                handle: Handle = await env.client.start_workflow(
                    RotateDbCredential.run,
                    KEYRING.sign_request(scenario["input"], workflow_id, now),  # type: ignore[arg-type]
                    id=workflow_id,
                    task_queue=queue,
                    result_type=RunState,
                )
                await scenario["drive"](env, handle)  # type: ignore[operator]
                await handle.result()
                history = await handle.fetch_history()
            (HISTORIES / f"{workflow_id}@{name}.json").write_text(history.to_json())
            print(f"recorded {name}")
        if names and "probe" not in names:
            return
        queue = uuid.uuid4().hex
        async with Worker(
            env.client, task_queue=queue, workflows=[PolicyProbe], activities=[policy_activities().served_policies]
        ):
            probe = await env.client.start_workflow(PolicyProbe.run, id="replay-policy-probe", task_queue=queue)
            await probe.result()
            (HISTORIES / "replay-policy-probe@probe.json").write_text((await probe.fetch_history()).to_json())
            print("recorded policy probe")


async def approve(env: WorkflowEnvironment, handle: Handle) -> None:
    state = await until_phase(handle, Phase.AWAITING_APPROVAL)
    await send(env, handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash))


async def approve_by_update(env: WorkflowEnvironment, handle: Handle) -> None:
    """As the CLI decides now: updates, a refused one first; and a malformed signal, recorded too."""
    state = await until_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal("approve")  # no input: refused and kept
    now = (await env.get_current_time()).timestamp()
    for actor in ("alice", "bob"):  # the requester's own is refused (four-eyes), then bob's counts
        input = KEYRING.sign_decision(
            state.decision_scope, Decision.APPROVE, DecisionInput(actor=actor, plan_hash=state.plan_hash), now
        )
        await handle.execute_update("approve", input, id=input.attempt_id)


async def retry_review(env: WorkflowEnvironment, handle: Handle) -> None:
    await until_phase(handle, Phase.NEEDS_REVIEW)
    resolve = ResolveInput(actor="carol", comment="checked", resolution=Decision.RETRY)
    await send(env, handle, Decision.RETRY, resolve)


async def nothing(env: WorkflowEnvironment, handle: Handle) -> None:
    del env, handle


class HeldSetPassword(FakeRotation):
    """Its set_password finishes once the run has kept Temporal's cancel."""

    started = asyncio.Event()
    release = asyncio.Event()

    @activity.defn(name="rotate_credential.set_password")
    async def set_password(self, input: RotationStepInput) -> StepResult:
        HeldSetPassword.started.set()
        await HeldSetPassword.release.wait()
        return await FakeRotation.set_password(self, input)


async def cancel_through_temporal(env: WorkflowEnvironment, handle: Handle) -> None:
    del env
    await asyncio.wait_for(HeldSetPassword.started.wait(), timeout=10)
    await handle.cancel()
    await temporal_cancel_kept(handle)
    HeldSetPassword.release.set()


def unknown_once() -> FakeRotation:
    return FakeRotation(failures={"set_password": [ApplicationError("reset", type="unknown", non_retryable=True)]})


SCENARIOS: dict[str, dict[str, object]] = {
    "approved": {"fake": FakeRotation, "input": run_input("prod"), "drive": approve},
    "approved_by_update": {"fake": FakeRotation, "input": run_input("prod"), "drive": approve_by_update},
    "expired": {"fake": FakeRotation, "input": run_input("prod"), "drive": nothing},
    "review_retry": {"fake": unknown_once, "input": run_input("dev"), "drive": retry_review},
    "temporal_cancel": {"fake": HeldSetPassword, "input": run_input("dev"), "drive": cancel_through_temporal},
}

if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:]))
