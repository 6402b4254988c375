"""CPU time from /proc: per process (all threads, user + system) and for the whole machine.

The machine-wide figure shows how busy the cores were with everything else during a measurement:
other people's test suites share this machine, and their load distorts latencies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """user + system time of `pid` so far; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    # Fields after the parenthesised command name (which may hold spaces): utime and stime are 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) core-seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / TICK, total / TICK


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


@dataclass(frozen=True)
class CpuSnapshot:
    processes: dict[str, float]
    machine_busy: float
    machine_total: float

    @classmethod
    def take(cls, pids: Mapping[str, int]) -> CpuSnapshot:
        busy, total = machine_cpu_seconds()
        return cls({name: process_cpu_seconds(pid) for name, pid in pids.items()}, busy, total)


@dataclass(frozen=True)
class CpuUsage:
    """What the named processes and the whole machine spent between two snapshots."""

    processes: dict[str, float]
    machine_busy: float
    machine_total: float

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
        spent = {name: round(after.processes[name] - before.processes.get(name, 0.0), 3) for name in after.processes}
        return cls(spent, after.machine_busy - before.machine_busy, after.machine_total - before.machine_total)

    def total(self, names: Iterable[str] | None = None) -> float:
        wanted = self.processes if names is None else {n: self.processes[n] for n in names}
        return sum(wanted.values())
