"""The whole system on one machine: every service and the gateway as separate processes.

Started by `make run` (scripts/run) after the infra is up. Each process logs to its own file under
the state directory; Ctrl-C (or SIGTERM) stops them all. Once every process is ready, the demo
account is seeded through the admin APIs (idempotent PUTs) and the MCP endpoint, an API key and the
headers to send are printed. `--demo` then runs the scripted demo call once.

Ports: the defaults (gateway 9443, services 9501-9504, the demo order API 9505) move with
`SWITCHBOARD_GATEWAY_PORT`, `SWITCHBOARD_PERSONA_HTTP_PORT`, `SWITCHBOARD_CALL_CONTROL_HTTP_PORT`,
`SWITCHBOARD_CONTACTS_HTTP_PORT`, `SWITCHBOARD_LEADS_HTTP_PORT` and `SWITCHBOARD_DEMO_API_PORT`;
the logs with `SWITCHBOARD_LOG_DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from switchboard.testing.system import ALL, ProcessSpec, System

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import seed  # noqa: E402  (scripts/seed.py)


class Stop(Exception):
    """SIGINT (Ctrl-C) or SIGTERM arrived."""


def log_dir() -> Path:
    """Where each process logs; `SWITCHBOARD_LOG_DIR` moves it (the state directory is the infra's)."""
    cache = Path(os.environ.get("SWITCHBOARD_CACHE", Path.home() / ".cache" / "switchboard"))
    state = Path(os.environ.get("SWITCHBOARD_STATE", cache / "state"))
    return Path(os.environ.get("SWITCHBOARD_LOG_DIR", state / "logs"))


def system_env() -> dict[str, str]:
    env = dict(os.environ)
    infra = subprocess.run([str(ROOT / "scripts" / "infra"), "env"], check=True, capture_output=True, text=True)
    for name, value in (line.split("=", 1) for line in infra.stdout.splitlines() if "=" in line):
        env.setdefault(name, value)
    env.setdefault("SWITCHBOARD_ADMIN_TOKEN", seed.DEMO_ADMIN_TOKEN)
    env.setdefault("SWITCHBOARD_GATEWAY_KEY_PEPPER", seed.DEMO_KEY_PEPPER)
    env.setdefault("SWITCHBOARD_CALL_CONTROL_WEBHOOK_SECRET", seed.DEMO_WEBHOOK_SECRET)
    env.setdefault("SWITCHBOARD_OTEL_FILE", str(log_dir() / "spans.jsonl"))
    return env


def port_of(spec: ProcessSpec, env: Mapping[str, str]) -> int:
    return int(env.get(spec.port_env) or spec.default_port)


class StopSignals:
    """SIGINT/SIGTERM raise `Stop` once; the ones after (Ctrl-C pressed again, the terminal's SIGTERM
    after its SIGINT) are let go, so they cannot break off the stopping. The handler stays installed:
    switching to SIG_IGN while a signal is pending makes Python raise OSError for it."""

    def __init__(self) -> None:
        self.stopping = False

    def install(self) -> None:
        # Set explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps that.
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            raise Stop


def run_demo(demo: seed.DemoSystem, urls: Mapping[str, str], env: Mapping[str, str]) -> None:
    command = [
        sys.executable,
        str(ROOT / "scripts" / "demo_call.py"),
        "--api-key",
        demo.api_key,
        "--mcp-url",
        demo.mcp_url,
        "--call-control-url",
        urls["call-control"],
    ]
    subprocess.run(command, env=dict(env), check=False)


def print_observability(urls: Mapping[str, str], env: Mapping[str, str]) -> None:
    """Where the traces and the metrics are (Jaeger runs once scripts/infra has built it)."""
    jaeger = env.get("SWITCHBOARD_JAEGER_URL")
    if jaeger:
        print(f"run: traces in Jaeger: {jaeger} (query API: {jaeger}/api/traces?service=switchboard-gateway)")
    else:
        print("run: traces: Jaeger is not running yet (scripts/infra builds it in the background; the next make run starts it)")
    print(f"run: metrics for Prometheus: {urls['gateway']}/metrics and /metrics on every service's port", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Switchboard: every service and the gateway.")
    parser.add_argument("--demo", action="store_true", help="run the scripted demo call once everything is up")
    args = parser.parse_args()

    env = system_env()
    system = System(env, log_dir())
    demo_api: seed.DemoApi | None = None
    signals = StopSignals()
    signals.install()
    try:
        demo_api = seed.DemoApi.start(int(env.get("SWITCHBOARD_DEMO_API_PORT") or seed.DEMO_API_PORT))
        print(f"run: demo order API on {demo_api.url}", flush=True)
        for spec in ALL:
            running = system.start(spec, port=port_of(spec, env))
            print(f"run: started {spec.name} (pid {running.process.pid}) on port {running.port}, log {running.log}")
        sys.stdout.flush()
        asyncio.run(system.wait_ready(timeout=120))
        urls = {r.spec.name: r.base_url for r in system.running}
        demo = seed.seed(env, urls, demo_api_url=demo_api.url, key_label="make run")
        seed.print_welcome(demo, urls, env)
        print_observability(urls, env)
        if args.demo:
            run_demo(demo, urls, env)
        print("run: all processes ready; Ctrl-C stops them", flush=True)
        while True:
            for r in system.exited():
                print(f"run: {r.label} exited with {r.process.returncode}; stopping the rest", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except Stop:
        print("\nrun: stopping", flush=True)
        return 0
    finally:
        signals.stopping = True
        system.stop_all()
        if demo_api is not None:
            demo_api.stop()
        print("run: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
