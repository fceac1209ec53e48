"""Metrics written back onto target records by a configured field mapping (any target can use it)."""

from __future__ import annotations

from collections.abc import Mapping

from sync_pipeline.config import METRIC_TYPES

_HEALTH = {"health_score": "h.score", "health_band": "h.band", "health_reason": "h.reason"}


def metric_expression(metric: str) -> str:
    """SQL for one metric of an account, from the aliases of `metric_joins`."""
    expr = _HEALTH.get(metric, f"r.{metric}")
    return f"CAST({expr} AS VARCHAR)" if METRIC_TYPES[metric] == "date" else expr


def metric_joins(account_column: str) -> str:
    return (f"LEFT JOIN marts.account_metrics_reporting r ON r.account_id = {account_column} "
            f"LEFT JOIN marts.financial_health h ON h.account_id = {account_column}")


def json_object_pairs(mapping: Mapping[str, str]) -> str:
    """`, 'decimal1', r.overdue_amount, ...` to splice into a json_object(...). Field names and metrics
    were validated against fixed patterns and METRIC_TYPES when the configuration was loaded."""
    return "".join(f", '{field}', {metric_expression(metric)}" for field, metric in sorted(mapping.items()))
