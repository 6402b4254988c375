"""The whole system on one machine: every service and the gateway as separate processes.

Started by `make run` (scripts/run) after the infra is up. Each process logs to its own file under
the state directory; Ctrl-C stops them all (SIGTERM, then SIGKILL after a grace period). Once every
process is ready, the demo account is seeded through the admin APIs (idempotent PUTs) and the MCP
endpoint, an API key and the headers to send are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import seed  # noqa: E402  (scripts/seed.py, next to this file)


@dataclass(frozen=True)
class Proc:
    name: str
    module: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


PROCESSES = [
    Proc("persona", "persona_svc", 9501),
    Proc("call-control", "call_control_svc", 9502),
    Proc("contacts", "contacts_svc", 9503),
    Proc("leads", "leads_svc", 9504),
    Proc("gateway", "gateway", 9443),
]

ENV_PORT = {
    "persona": "SWITCHBOARD_PERSONA_HTTP_PORT",
    "call-control": "SWITCHBOARD_CALL_CONTROL_HTTP_PORT",
    "contacts": "SWITCHBOARD_CONTACTS_HTTP_PORT",
    "leads": "SWITCHBOARD_LEADS_HTTP_PORT",
    "gateway": "SWITCHBOARD_GATEWAY_PORT",
}


def state_dir() -> Path:
    cache = Path(os.environ.get("SWITCHBOARD_CACHE", Path.home() / ".cache" / "switchboard"))
    return Path(os.environ.get("SWITCHBOARD_STATE", cache / "state"))


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    infra = subprocess.run([str(ROOT / "scripts" / "infra"), "env"], check=True, capture_output=True, text=True)
    env.update(line.split("=", 1) for line in infra.stdout.splitlines() if "=" in line)
    env.setdefault("SWITCHBOARD_ADMIN_TOKEN", seed.DEMO_ADMIN_TOKEN)
    env.setdefault("SWITCHBOARD_GATEWAY_KEY_PEPPER", seed.DEMO_KEY_PEPPER)
    env.setdefault("SWITCHBOARD_CALL_CONTROL_WEBHOOK_SECRET", seed.DEMO_WEBHOOK_SECRET)
    env.setdefault("SWITCHBOARD_OTEL_FILE", str(state_dir() / "logs" / "spans.jsonl"))
    return env


def start(proc: Proc, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"{proc.name}.log", "ab")
    child_env = {**env, ENV_PORT[proc.name]: str(proc.port)}
    return subprocess.Popen(
        [sys.executable, "-m", proc.module],
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def wait_ready(procs: list[Proc], children: dict[str, subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        for proc in procs:
            while True:
                if children[proc.name].poll() is not None:
                    raise SystemExit(f"run: {proc.name} exited at start; see its log")
                try:
                    if (await http.get(f"{proc.base_url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"run: {proc.name} was not ready within {timeout:.0f}s; see its log")
                await asyncio.sleep(0.2)


def stop_all(children: dict[str, subprocess.Popen[bytes]], grace: float = 10) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children.values():
        try:
            child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Switchboard: every service and the gateway.")
    parser.add_argument("--demo", action="store_true", help="run the scripted demo call once everything is up")
    parser.add_argument("--no-seed", action="store_true", help="do not seed the demo account")
    args = parser.parse_args()

    logs = state_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = base_env()
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for proc in PROCESSES:
            children[proc.name] = start(proc, env, logs)
            print(f"run: started {proc.name} (pid {children[proc.name].pid}), log {logs / (proc.name + '.log')}")
        asyncio.run(wait_ready(PROCESSES, children))
        if not args.no_seed:
            key = seed.seed(env, {p.name: p.base_url for p in PROCESSES})
            seed.print_welcome(key, {p.name: p.base_url for p in PROCESSES}, env)
            if args.demo:
                subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_call.py"), "--api-key", key], env=env)
        print("run: all processes ready; Ctrl-C stops them")
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"run: {name} exited with {child.returncode}; stopping the rest", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        stop_all(children)
        print("run: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
