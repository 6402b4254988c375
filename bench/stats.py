"""Latency percentiles, throughput and outcomes of one run, overall and per tool."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.load import Outcome, Sample


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(q / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_ms(samples: Sequence[Sample]) -> dict[str, float]:
    values = sorted(s.latency * 1000 for s in samples)
    return {
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(values[-1], 2) if values else float("nan"),
    }


def group(samples: Sequence[Sample], duration: float) -> dict[str, Any]:
    """Latency of the calls that were served (not refused), refusals and errors, and throughput."""
    served = [s for s in samples if s.outcome not in Outcome.REFUSED]
    refused = [s for s in samples if s.outcome in Outcome.REFUSED]
    outcomes = Counter(s.outcome for s in samples)
    summary: dict[str, Any] = {
        "calls": len(samples),
        "ok": outcomes.get(Outcome.ok, 0),
        "errors": sum(n for outcome, n in outcomes.items() if outcome != Outcome.ok and outcome not in Outcome.REFUSED),
        "refused": len(refused),
        "throughput_per_s": round(outcomes.get(Outcome.ok, 0) / duration, 1),
        "latency_ms": latency_ms(served),
        "outcomes": dict(sorted(outcomes.items())),
    }
    if refused:
        summary["refused_latency_ms"] = latency_ms(refused)
    return summary


def summarise(samples: Sequence[Sample], duration: float) -> dict[str, Any]:
    tools = sorted({s.tool for s in samples})
    lags = sorted(s.lag * 1000 for s in samples)
    return {
        **group(samples, duration),
        "generator_lag_ms": {"p99": round(percentile(lags, 99), 2), "max": round(lags[-1], 2) if lags else 0.0},
        "tools": {tool: group([s for s in samples if s.tool == tool], duration) for tool in tools},
    }
