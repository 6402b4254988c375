"""What the figures were measured on: the machine, the code, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from switchboard.testing.infra import REPO_ROOT


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with open("/proc/meminfo") as f:
        kib = int(f.readline().split()[1])
    return round(kib / 1024 / 1024, 1)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False).stdout.strip()


def busiest_processes(count: int = 8) -> list[str]:
    """The top of `top -bn1`: who else was using the cores."""
    out = subprocess.run(["top", "-bn1", "-w", "200"], capture_output=True, text=True, check=False).stdout
    lines = out.splitlines()
    header = next((i for i, line in enumerate(lines) if line.lstrip().startswith("PID")), None)
    return [" ".join(line.split()) for line in lines[header + 1 : header + 1 + count]] if header is not None else []


PROBE_LOOP = 1_000_000


def cpu_probe_ms(repeat: int = 3) -> float:
    """The best of `repeat` timings of one fixed Python loop: how fast a core of this machine is now.

    The cores of this virtual machine do not keep one speed: on an idle machine the same loop has
    taken 160 ms and, twenty seconds later, 250 ms. A run's figures are read against the probes taken
    next to them (`cpu_probe_ms` of each step); equal code measured at unequal probes is not comparable.
    """
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        total = 0
        for i in range(PROBE_LOOP):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def describe() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "cpu_probe_ms": cpu_probe_ms(),
        "busiest_processes": busiest_processes(),
    }
