"""OpsctlPolicy: ask the workers which policies they apply — `opsctl policy show` runs it.

The workers hold the policy file; the CLI reaches them only through Temporal. This
workflow does nothing but read the served policies (a local activity) and return them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.policy import PolicyActivities
    from contracts.policy import POLICY_PROBE, ServedPolicies


@workflow.defn(name=POLICY_PROBE)
class PolicyProbe:
    @workflow.run
    async def run(self) -> ServedPolicies:
        return await workflow.execute_local_activity_method(
            PolicyActivities.served_policies,
            start_to_close_timeout=timedelta(seconds=10),
            summary="read the policies this worker applies",
        )


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
