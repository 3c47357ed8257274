"""The demo: a credential rotation done the way two people would, on the embedded stack.

Every step is a real `opsctl` command, printed before it runs, so the demo doubles as a
walkthrough of the CLI.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
import time
from collections.abc import Callable

from client.config import load_config
from client.render import Output
from contracts.failures import ExitCode, OpsctlError

ROLE, SECRET = "app_user", "demo/app_user"


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from client.devstack import Stack, seed_role
    from client.main import run

    config = load_config(None, args.state_dir)
    state_dir = ["--state-dir", str(config.state_dir)] if args.state_dir else []

    def opsctl(*argv: str, expect: ExitCode) -> str:
        print(f"\n$ opsctl {shlex.join(argv)}", flush=True)
        captured = _Tee()
        code = run([*argv, *state_dir], stdout=captured, stderr=sys.stdout)
        if code != expect:
            raise OpsctlError(ExitCode.UNEXPECTED, f"`opsctl {shlex.join(argv)}` exited {code}, expected {int(expect)}")
        return captured.text

    print("== 1. the embedded stack: Temporal dev server, PostgreSQL, local AWS endpoint, codec server, worker")
    opsctl("dev", "up", expect=ExitCode.SUCCESS)
    stack = Stack(config.state_dir)

    print(f"\n== 2. seed: role {ROLE} in database 'app', its credentials in secret {SECRET}")
    seed_role(stack, ROLE, SECRET)
    document = config.state_dir / "demo" / "rotate-app-user.yaml"
    document.parent.mkdir(parents=True, exist_ok=True)
    key = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    document.write_text(DOCUMENT.format(key=key, role=ROLE, secret=SECRET))
    print(f"request document {document}:\n\n{document.read_text()}")

    print("== 3. alice submits the request; prod needs a second person's approval")
    opsctl("apply", "-f", str(document), "--as", "alice", expect=ExitCode.AWAITING_APPROVAL)
    status = json.loads(
        opsctl(
            "status",
            f"RotateDbCredential-prod-{key}",
            "--format",
            "json",
            "--as",
            "alice",
            expect=ExitCode.AWAITING_APPROVAL,
        )
    )
    run_id, plan_hash = status["workflow_id"], status["plan_hash"]

    print("\n== 4. alice tries to approve her own request: refused and recorded (four-eyes)")
    opsctl("approve", run_id, "--plan-hash", plan_hash, "--as", "alice", expect=ExitCode.DENIED)

    print("\n== 5. bob reviews the plan above and approves that exact hash")
    opsctl(
        "approve",
        run_id,
        "--plan-hash",
        plan_hash,
        "--comment",
        "reviewed plan",
        "--as",
        "bob",
        expect=ExitCode.SUCCESS,
    )

    print("\n== 6. apply runs step by step, then verify; the result answers the four questions")
    opsctl("result", run_id, "--wait", "--timeout", "120", "--as", "bob", expect=ExitCode.SUCCESS)

    text = (
        f"\nDemo done: {run_id} rotated {ROLE}'s password; no password was printed or stored in history.\n"
        f"Web UI: {config.web_ui(run_id)} (the history is encrypted; the UI decodes it through the codec server)\n"
        "The stack is still running. Stop it with `opsctl dev down` (or `make down`)."
    )
    return Output({"run_id": run_id, "web_ui": config.web_ui(run_id)}, text)


class _Tee(io.StringIO):
    """Shows a command's output as it comes and keeps a copy to read values from."""

    def write(self, text: str) -> int:
        sys.stdout.write(text)
        return super().write(text)

    @property
    def text(self) -> str:
        return self.getvalue()


DOCUMENT = """\
apiVersion: opsctl/v1
kind: RotateDbCredential
metadata:
  environment: prod
  idempotencyKey: {key}
  labels:
    ticket: DEMO-1
spec:
  database: app
  role: {role}
  secretId: {secret}
"""
