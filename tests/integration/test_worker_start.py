"""A worker checks its namespace before it polls: runs must never hang on a missing search attribute."""

from __future__ import annotations

import uuid

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from worker.main import serve
from worker.search_attributes import missing_search_attributes
from worker.settings import WorkerSettings


async def test_the_stack_s_namespace_has_every_search_attribute(client: Client) -> None:
    assert [] == await missing_search_attributes(client, "default")


async def test_a_worker_refuses_a_namespace_without_opsctl_s_search_attributes(
    client: Client, worker_settings: WorkerSettings
) -> None:
    namespace = f"bare-{uuid.uuid4().hex[:6]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    temporal = worker_settings.temporal.model_copy(update={"namespace": namespace})
    with pytest.raises(SystemExit) as refused:
        await serve(worker_settings.model_copy(update={"temporal": temporal}))
    message = str(refused.value)
    assert f"namespace {namespace} lacks the search attributes OpsctlKind" in message
    assert (
        f"temporal operator search-attribute create --namespace {namespace} --name OpsctlMode --type Keyword" in message
    )
