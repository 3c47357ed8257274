"""The example alert rules in deploy/ parse, and use only metrics the workers emit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from contracts.metrics import series_names

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "opsctl-alerts.yaml"
_NAME = re.compile(r"\b(?:opsctl|temporal)_[a-z0-9_]+\b")


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete() -> None:
    """An alert, an expression with balanced brackets, a severity and a summary."""
    for rule in rules():
        expr = rule["expr"]
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert expr.count("(") == expr.count(")"), rule["alert"]
        assert expr.count("{") == expr.count("}"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_the_rules_cover_failures_retries_stuck_reviews_and_expiring_approvals() -> None:
    assert {
        "OpsctlRunFailureRate",
        "OpsctlStepRetryRate",
        "OpsctlRunStuckInNeedsReview",
        "OpsctlApprovalsAboutToExpire",
    } <= {rule["alert"] for rule in rules()}


def test_every_metric_a_rule_uses_is_one_the_workers_emit() -> None:
    """The names are contracts.metrics' (tests/integration/test_telemetry.py scrapes each after real runs)."""
    used = {name for rule in rules() for name in _NAME.findall(rule["expr"])}
    assert used
    assert set() == used - series_names()
