"""`python -m bench.profiled`: run a process's `python -m <module>` with pyinstrument on call.

`BENCH_PROFILE_MODULE` names the module (e.g. `gateway`), `BENCH_PROFILE_OUTPUT` the text report.
SIGUSR1 starts the profiler and SIGUSR2 stops it and writes the report, so the profile covers the
load window only, not the start-up imports. The profiler samples the main thread, event loop
included: `epoll.poll` is time spent waiting, the rest is where the process spends its CPU.
"""

from __future__ import annotations

import os
import runpy
import signal
from pathlib import Path
from types import FrameType

from pyinstrument import Profiler

MODULE = "BENCH_PROFILE_MODULE"
OUTPUT = "BENCH_PROFILE_OUTPUT"
START = signal.SIGUSR1
STOP = signal.SIGUSR2


def main() -> None:
    profiler = Profiler(interval=0.001, async_mode="disabled")
    output = Path(os.environ[OUTPUT])

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.stop()
        tree = profiler.output_text(unicode=True)
        flat = profiler.output_text(unicode=True, flat=True)
        output.write_text(f"{tree}\n\nSelf time by function:\n{flat}")

    signal.signal(START, start)
    signal.signal(STOP, stop)
    runpy.run_module(os.environ[MODULE], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
