"""The custom search attributes opsctl sets on every run: one definition for workflow, CLI and dev stack.

Names and Temporal value types only (no SDK import: contracts stay pure). The Web UI and
`opsctl list` filter on them, e.g. `OpsctlPhase = "awaiting_approval"`.
"""

from __future__ import annotations

KIND = "OpsctlKind"
ENVIRONMENT = "OpsctlEnvironment"
PHASE = "OpsctlPhase"
REQUESTER = "OpsctlRequester"
PLAN_HASH = "OpsctlPlanHash"
EMERGENCY = "OpsctlEmergency"
RERUN_OF = "OpsctlRerunOf"  # the run an `opsctl rerun` repeats: `opsctl list --rerun-of RUN` finds its reruns
MODE = "OpsctlMode"  # apply or dry_run: `opsctl list` hides dry runs unless asked
DRIFT = "OpsctlDrift"  # a scheduled dry run whose plan has changes (`opsctl list --drift`)

# name → Temporal's indexed value type, as `temporal operator search-attribute create --type` spells it
SEARCH_ATTRIBUTES: dict[str, str] = {
    KIND: "Keyword",
    ENVIRONMENT: "Keyword",
    PHASE: "Keyword",
    REQUESTER: "Keyword",
    PLAN_HASH: "Keyword",
    EMERGENCY: "Bool",
    MODE: "Keyword",
    RERUN_OF: "Keyword",
    DRIFT: "Bool",
}


def at_start(kind: str, environment: str, requester: str | None, mode: str) -> dict[str, str]:
    """What `opsctl list` filters on from a run's first moment (all Keyword); the workflow sets them
    again as it believes them."""
    return {KIND: kind, ENVIRONMENT: environment, PHASE: "validating", REQUESTER: requester or "", MODE: mode}
