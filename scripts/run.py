"""The whole system on one machine: every service and the gateway as separate processes.

Started by `make run` (scripts/run) after the infra is up. Each process logs to its own file under
the state directory; Ctrl-C stops them all. Once every process is ready, the demo account is seeded
through the admin APIs (idempotent PUTs) and the MCP endpoint, an API key and the headers to send
are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from switchboard.testing.system import ALL, System

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import seed  # noqa: E402  (scripts/seed.py)


def state_dir() -> Path:
    cache = Path(os.environ.get("SWITCHBOARD_CACHE", Path.home() / ".cache" / "switchboard"))
    return Path(os.environ.get("SWITCHBOARD_STATE", cache / "state"))


def system_env() -> dict[str, str]:
    env = dict(os.environ)
    infra = subprocess.run([str(ROOT / "scripts" / "infra"), "env"], check=True, capture_output=True, text=True)
    env.update(line.split("=", 1) for line in infra.stdout.splitlines() if "=" in line)
    env.setdefault("SWITCHBOARD_ADMIN_TOKEN", seed.DEMO_ADMIN_TOKEN)
    env.setdefault("SWITCHBOARD_GATEWAY_KEY_PEPPER", seed.DEMO_KEY_PEPPER)
    env.setdefault("SWITCHBOARD_CALL_CONTROL_WEBHOOK_SECRET", seed.DEMO_WEBHOOK_SECRET)
    env.setdefault("SWITCHBOARD_OTEL_FILE", str(state_dir() / "logs" / "spans.jsonl"))
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Switchboard: every service and the gateway.")
    parser.add_argument("--demo", action="store_true", help="run the scripted demo call once everything is up")
    args = parser.parse_args()

    env = system_env()
    system = System(env, state_dir() / "logs")
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for spec in ALL:
            running = system.start(spec, port=spec.default_port)
            print(f"run: started {spec.name} (pid {running.process.pid}) on port {running.port}, log {running.log}")
        asyncio.run(system.wait_ready())
        urls = {r.spec.name: r.base_url for r in system.running}
        key = seed.seed(env, urls)
        seed.print_welcome(key, urls, env)
        if args.demo:
            subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_call.py"), "--api-key", key], env=env, check=False)
        print("run: all processes ready; Ctrl-C stops them")
        while not stopping:
            for r in system.exited():
                print(f"run: {r.label} exited with {r.process.returncode}; stopping the rest", file=sys.stderr)
                stopping = True
            time.sleep(0.5)
    finally:
        system.stop_all()
        print("run: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
