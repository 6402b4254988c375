"""What the figures were measured on: the machine, the code, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess
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
        "busiest_processes": busiest_processes(),
    }
