"""Test identities with real Ed25519 keys, and the policy set that registers them.

alice requests; bob and dave are in dba, carol in owners; eve has a key nobody registered.
The integration worker loads `POLICY_FILE`; time-skipping workers use `policy_activities`.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from activities.policy import PolicyActivities
from client.devstack import DEV_AWS_ENV, Stack
from client.keys import Keyring, create_key
from contracts.policy import PolicySet
from contracts.policy import policy_document as contract_document
from worker.settings import WorkerSettings

KEYS_DIR = Path(tempfile.mkdtemp(prefix="opsctl-test-keys-"))
atexit.register(shutil.rmtree, KEYS_DIR, ignore_errors=True)  # each test session, each fuzzing campaign its own
IDENTITIES = ("alice", "bob", "carol", "dave", "eve")
for _name in IDENTITIES:
    create_key(KEYS_DIR, _name)
KEYRING = Keyring([KEYS_DIR])
GROUPS = {"dba": ["bob", "dave"], "owners": ["carol"]}


def policy_document(**environments: dict[str, Any]) -> dict[str, Any]:
    """The built-in rules with the test identities registered; `environments` adds or replaces some."""
    keys = {name: str(KEYRING.public_key(name)) for name in IDENTITIES if name != "eve"}
    document = contract_document(keys, GROUPS)
    document["environments"].update(environments)
    return document


def policies(**environments: dict[str, Any]) -> PolicySet:
    return PolicySet.model_validate(policy_document(**environments))


POLICY_FILE = KEYS_DIR / "policy.yaml"
POLICY_FILE.write_text(yaml.safe_dump(policy_document()))


def policy_activities(policy_set: PolicySet | None = None, **settings: Any) -> PolicyActivities:
    """For the time-skipping server (no custom search attributes, no visibility); pass
    search_attributes=True for a worker on the dev server. Serves every test environment."""
    chosen = policy_set or policies()
    defaults = {"search_attributes": False, "environments": sorted(chosen.environments)}
    merged = {**defaults, **settings}
    merged.setdefault("check_id_reuse", merged["search_attributes"])
    return PolicyActivities(chosen, "test policies", **merged)


def stack_worker_settings(stack: Stack) -> WorkerSettings:
    """A worker for `stack` that obeys `POLICY_FILE` and serves every test environment."""
    return WorkerSettings.model_validate(
        {
            "temporal": {"address": stack.temporal_address},
            "aws": {"endpoint_url": stack.aws_endpoint, "region": DEV_AWS_ENV["AWS_DEFAULT_REGION"]},
            "databases": {"app": stack.database_target("app")},
            "policy_file": str(POLICY_FILE),
            "environments": ["dev", "staging", "prod"],
        }
    )
