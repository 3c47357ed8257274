"""Worker settings: one JSON file (`OPSCTL_WORKER_SETTINGS`) plus environment overrides.

The same shape serves the embedded stack (written by `opsctl dev up`) and a real
deployment (a mounted file or plain environment variables). Secrets are referenced
(a file path or an environment variable name), never written here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from activities.aws import AwsSettings
from activities.postgres import DatabaseTarget
from encryption.keys import EncryptionKeys, load_keys


class TemporalSettings(BaseModel):
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "opsctl"


class CodecSettings(BaseModel):
    """Payload encryption (`encryption.keys`): a keys file referenced here, never the keys themselves.

    `OPSCTL_CODEC_KEYS_FILE`, `OPSCTL_CODEC_KEYS` (inline) and `OPSCTL_CODEC_KEY_ID` override these.
    Empty: no encryption, unless the environment configures keys.
    """

    keys_file: str = ""
    key_id: str = ""  # the id that encrypts; empty: the last key of the file


class WorkerSettings(BaseModel):
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    databases: dict[str, DatabaseTarget] = Field(default_factory=dict)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    trace_file: str = ""  # finished spans as JSON lines; empty: tracing stays in-process
    metrics_address: str = ""  # host:port serving Prometheus /metrics; empty: no endpoint
    # The policies runs obey (YAML or JSON, `opsctl policy check -f` validates it); empty: built-in.
    policy_file: str = ""
    # The environments this worker runs (its credentials reach their targets): a run for any other
    # environment has no policy here and fails validation. Empty: every environment of the policy file.
    # Production workers serve one environment each, on their own task queue.
    environments: list[str] = Field(default_factory=list)
    # Test-only: the time-skipping test server knows no custom search attributes.
    search_attributes: bool = True
    check_id_reuse: bool = True  # test-only off: the time-skipping server has no visibility to ask
    history_event_limit: int = 4000  # continue-as-new once a run's history reaches this many events
    # Overrides every policy's retryWindowSeconds when set (test stacks: seconds instead of minutes).
    retry_window_seconds: int | None = Field(default=None, ge=1)

    @classmethod
    def load(cls, path: str | None = None) -> WorkerSettings:
        path = path or os.environ.get("OPSCTL_WORKER_SETTINGS")
        data = json.loads(Path(path).read_text()) if path else {}
        settings = cls.model_validate(data)
        temporal = settings.temporal.model_copy(
            update={
                key: os.environ[env]
                for key, env in (
                    ("address", "OPSCTL_TEMPORAL_ADDRESS"),
                    ("namespace", "OPSCTL_NAMESPACE"),
                    ("task_queue", "OPSCTL_TASK_QUEUE"),
                )
                if os.environ.get(env)
            }
        )
        policy_file = os.environ.get("OPSCTL_POLICY_FILE") or settings.policy_file
        return settings.model_copy(update={"temporal": temporal, "policy_file": policy_file})

    def encryption_keys(self) -> EncryptionKeys | None:
        """The keyring this worker encrypts and decrypts with (raises `KeysError` when malformed)."""
        return load_keys(self.codec.keys_file, self.codec.key_id)
