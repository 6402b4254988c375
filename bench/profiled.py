"""`python -m bench.profiled`: run a process's `python -m <module>` under pyinstrument.

`BENCH_PROFILE_MODULE` names the module (e.g. `gateway`), `BENCH_PROFILE_OUTPUT` the text report
written when the process stops (SIGTERM ends both the gateway and the services normally). The
profiler samples the main thread, event loop included, so idle waits show as `select` and the rest
is where the process spends its CPU.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from pyinstrument import Profiler

MODULE = "BENCH_PROFILE_MODULE"
OUTPUT = "BENCH_PROFILE_OUTPUT"


def main() -> None:
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        runpy.run_module(os.environ[MODULE], run_name="__main__", alter_sys=True)
    finally:
        profiler.stop()
        tree = profiler.output_text(unicode=True)
        flat = profiler.output_text(unicode=True, flat=True)
        Path(os.environ[OUTPUT]).write_text(f"{tree}\n\nSelf time by function:\n{flat}")


if __name__ == "__main__":
    main()
