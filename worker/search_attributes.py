"""A worker refuses to start on a namespace that lacks opsctl's search attributes.

Without them every run's first upsert fails its workflow task, over and over: better a worker that
says at start which attributes to register (deploy/README.md) than runs that hang.
"""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from contracts.search_attributes import SEARCH_ATTRIBUTES


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    """opsctl's search attributes the namespace does not have, in definition order."""
    response = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return [name for name in SEARCH_ATTRIBUTES if name not in response.custom_attributes]


def registration_commands(namespace: str, names: list[str]) -> str:
    return "; ".join(
        f"temporal operator search-attribute create --namespace {namespace} --name {name} "
        f"--type {SEARCH_ATTRIBUTES[name]}"
        for name in names
    )
