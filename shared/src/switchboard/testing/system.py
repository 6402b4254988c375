"""The whole system as real processes: used by `make run` (scripts/run.py) and the end-to-end tests.

Each process is started with `python -m <module>` and its own log file; readiness is its `/readyz`.
Processes are found by module name only, so this module imports no service.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    module: str
    port_env: str
    host_env: str
    default_port: int


PERSONA = ProcessSpec("persona", "persona_svc", "SWITCHBOARD_PERSONA_HTTP_PORT", "SWITCHBOARD_PERSONA_HTTP_HOST", 9501)
CALL_CONTROL = ProcessSpec(
    "call-control", "call_control_svc", "SWITCHBOARD_CALL_CONTROL_HTTP_PORT", "SWITCHBOARD_CALL_CONTROL_HTTP_HOST", 9502
)
CONTACTS = ProcessSpec("contacts", "contacts_svc", "SWITCHBOARD_CONTACTS_HTTP_PORT", "SWITCHBOARD_CONTACTS_HTTP_HOST", 9503)
LEADS = ProcessSpec("leads", "leads_svc", "SWITCHBOARD_LEADS_HTTP_PORT", "SWITCHBOARD_LEADS_HTTP_HOST", 9504)
GATEWAY = ProcessSpec("gateway", "gateway", "SWITCHBOARD_GATEWAY_PORT", "SWITCHBOARD_GATEWAY_HOST", 9443)

SERVICES = (PERSONA, CALL_CONTROL, CONTACTS, LEADS)
ALL = (*SERVICES, GATEWAY)

DATABASE_ENV: dict[str, str] = {
    spec.name: f"SWITCHBOARD_{spec.name.upper().replace('-', '_')}_MONGO_DATABASE" for spec in ALL
}
"""Each process's database setting, by process name."""


def isolated_databases(prefix: str) -> dict[str, str]:
    """The environment that gives every process a database of its own, `<prefix>_<process>`."""
    return {variable: f"{prefix}_{name.replace('-', '_')}" for name, variable in DATABASE_ENV.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Running:
    spec: ProcessSpec
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    replica: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.spec.name}#{self.replica}" if self.replica else self.spec.name


@dataclass
class System:
    env: Mapping[str, str]
    log_dir: Path
    running: list[Running] = field(default_factory=list)

    def start(self, spec: ProcessSpec, *, port: int | None = None, replica: int = 0, extra_env: Mapping[str, str] | None = None) -> Running:
        port = port or free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / (f"{spec.name}-{replica}.log" if replica else f"{spec.name}.log")
        env = {**self.env, spec.port_env: str(port), spec.host_env: "127.0.0.1", **(extra_env or {})}
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", spec.module],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        running = Running(spec, port, process, log, replica)
        self.running.append(running)
        return running

    def get(self, name: str, replica: int = 0) -> Running:
        return next(r for r in self.running if r.spec.name == name and r.replica == replica)

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            for r in self.running:
                while True:
                    if r.process.poll() is not None:
                        raise RuntimeError(f"{r.label} exited with {r.process.returncode} at start:\n{tail(r.log)}")
                    try:
                        if (await http.get(f"{r.base_url}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{r.label} not ready within {timeout:.0f}s:\n{tail(r.log)}")
                    await asyncio.sleep(0.1)

    def signal(self, running: Running, sig: int) -> None:
        os.kill(running.process.pid, sig)

    def stop(self, running: Running, *, grace: float = 10) -> None:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(grace)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()

    def stop_all(self, *, grace: float = 10) -> None:
        for r in self.running:
            if r.process.poll() is None:
                try:
                    r.process.send_signal(signal.SIGCONT)
                    r.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for r in self.running:
            try:
                r.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                r.process.kill()
                r.process.wait()

    def exited(self) -> list[Running]:
        return [r for r in self.running if r.process.poll() is not None]


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
