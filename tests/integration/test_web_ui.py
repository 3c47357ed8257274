"""An approver reads the run in the Temporal Web UI: a real headless Chromium on the embedded dev server.

The run is encrypted, as on `opsctl dev up`: the UI shows it through the stack's codec server
(`--ui-codec-endpoint`), which is what the test proves by asking the server for the raw payloads.

Debian's `chromium` (installed by `make test` when missing) is driven by Playwright for Python
through its executable path; Playwright never downloads a browser here. Screenshots are kept
in test-artifacts/web-ui/ (or $OPSCTL_TEST_ARTIFACTS) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.client import Client

from client.devstack import Stack
from contracts.encryption import ENCODING
from contracts.run import RunState
from tests.integration.test_readable_runs import awaiting_rotation

ROOT = Path(__file__).resolve().parents[2]
# What the machine's own probe found necessary: the closed network refuses Chromium's background calls.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SEEN = 30_000  # ms: how long the UI may take to show something


def artifacts() -> Path:
    folder = Path(os.environ.get("OPSCTL_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "web-ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Debian's chromium is missing: `make test` installs it (apt-get install -y chromium)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(artifacts() / f"{name}.png"), full_page=True)


async def test_an_approver_finds_the_encrypted_run_and_reads_its_summary_and_plan_in_the_web_ui(
    stack: Stack, encrypted_client: Client, encrypted_task_queue: str, browser: Browser
) -> None:
    handle = await awaiting_rotation(stack, encrypted_client, encrypted_task_queue)
    state = await handle.query("state", result_type=RunState)
    role = state.request.spec["role"]
    summary = f"RotateDbCredential {role}@app · prod · alice"
    plain = await Client.connect(stack.temporal_address)  # no codec: what the server holds
    raw = (await plain.get_workflow_handle(handle.id).describe()).raw_description
    assert ENCODING.encode() == raw.execution_config.user_metadata.summary.metadata["encoding"]
    page = await browser.new_page(viewport={"width": 1400, "height": 1800})
    decoded_by_codec_server: list[int] = []
    page.on(
        "response",
        lambda response: (
            decoded_by_codec_server.append(response.status)
            if response.url.startswith(f"{stack.codec_url}/") and "/decode" in response.url
            else None
        ),
    )
    try:
        # The list of runs awaiting approval, as an approver would filter it.
        query = "OpsctlPhase = 'awaiting_approval'"
        await page.goto(f"{stack.ui_url}/namespaces/default/workflows?query={query}")
        row = page.get_by_role("link", name=handle.id)
        await expect(row).to_be_visible(timeout=SEEN)
        await shot(page, "1-awaiting-approval-list")

        await row.click()
        await expect(page.get_by_text(handle.id).first).to_be_visible(timeout=SEEN)
        await page.get_by_role("tab", name="User Metadata").click()
        await shot(page, "2-run-user-metadata-tab")
        # Each markdown field is rendered by the UI in a frame of its own.
        summary_frame = page.frame_locator("iframe#user-metadata-summary").locator("body")
        await expect(summary_frame).to_contain_text(summary, timeout=SEEN)
        details = page.frame_locator("iframe#user-metadata-current-details").locator("body")
        await expect(details).to_contain_text("Awaiting approval", timeout=SEEN)
        await expect(details).to_contain_text(state.plan_hash)
        await expect(details).to_contain_text("Deadline: 20")
        await expect(details).to_contain_text(f"app/{role}")  # a resource of the plan
        await expect(details).to_contain_text(f"opsctl approve {handle.id} --plan-hash {state.plan_hash}")
        await shot(page, "3-run-summary-and-plan")
        assert decoded_by_codec_server, "the UI decoded the run through the codec server"
        assert {200} == set(decoded_by_codec_server)
    finally:
        await page.close()
        await handle.terminate("test over")
