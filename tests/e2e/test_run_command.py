"""`make run` as a user meets it: scripts/run.py starts every process on the ports it is given, seeds
the demo account, prints the endpoint and a key that works, runs the scripted demo call with
`--demo`, and Ctrl-C (SIGINT to its process group, as a terminal sends it) stops everything, once,
however many signals follow."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from demo_call import mcp_client
from switchboard.testing.infra import REPO_ROOT
from switchboard.testing.system import ALL, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

READY = "run: all processes ready"
STARTED = re.compile(r"^run: started (?P<name>\S+) \(pid (?P<pid>\d+)\) on port (?P<port>\d+)")


@dataclass
class RunCommand:
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def read_until(self, marker: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not any(marker in line for line in self.lines):
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"run.py ended before printing {marker!r}:\n{self.output}")
                self.lines.append(line.decode(errors="replace").rstrip("\n"))

    async def read_to_end(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            async for line in self.process.stdout:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
            await self.process.wait()

    def value_after(self, label: str) -> str:
        """The rest of the first line that starts with `label`."""
        for line in self.lines:
            if line.startswith(label):
                return line[len(label) :].strip()
        raise AssertionError(f"{label!r} not in the output:\n{self.output}")

    def started(self) -> dict[str, tuple[int, int]]:
        """Process name -> (pid, port), as run.py reported them."""
        matches = (STARTED.match(line) for line in self.lines)
        return {m["name"]: (int(m["pid"]), int(m["port"])) for m in matches if m}


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def run_env(system_env: dict[str, str], log_dir: Path) -> dict[str, str]:
    """Free ports for every process and the demo API, so a running `make run` is not disturbed."""
    ports = {spec.port_env: str(free_port()) for spec in ALL}
    return {
        **system_env,
        **ports,
        "SWITCHBOARD_DEMO_API_PORT": str(free_port()),
        "SWITCHBOARD_LOG_DIR": str(log_dir),
    }


@pytest.fixture
async def run_command(system_env, tmp_path) -> AsyncIterator[RunCommand]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO_ROOT / "scripts" / "run.py"),
        "--demo",
        env=run_env(system_env, tmp_path / "logs"),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    command = RunCommand(process)
    try:
        yield command
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        for pid, _ in command.started().values():
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


async def test_run_prints_a_working_key_runs_the_demo_and_stops_on_ctrl_c(run_command: RunCommand) -> None:
    await run_command.read_until(READY, timeout=240)
    endpoint = run_command.value_after("MCP endpoint (Streamable HTTP):")
    key = run_command.value_after("API key:")
    started = run_command.started()
    assert sorted(started) == sorted(spec.name for spec in ALL)
    assert endpoint == f"http://127.0.0.1:{started['gateway'][1]}/ucp/v2/mcp"
    assert re.fullmatch(r"sbk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", key)
    for header in ("X-API-Key:", "account_id: demo", "persona_id: reception", "call_id:", "caller_id_number:"):
        assert header in run_command.output
    assert "/pbx/v1/calls" in run_command.output
    assert "demo: every step answered as expected" in run_command.output

    headers = {"X-API-Key": key, "account_id": "demo", "persona_id": "reception", "call_id": "run-check"}
    async with mcp_client(endpoint, headers) as client:
        office = await client.call_tool("is_office_open", {})
    assert not office.is_error and office.content[0].text.startswith("Office is")

    # Ctrl-C pressed twice and the terminal's SIGTERM on top, back to back: one clean stop.
    os.killpg(run_command.process.pid, signal.SIGINT)
    os.killpg(run_command.process.pid, signal.SIGINT)
    run_command.process.send_signal(signal.SIGTERM)
    await run_command.read_to_end(timeout=60)
    assert run_command.process.returncode == 0, run_command.output
    assert "Traceback" not in run_command.output
    assert run_command.lines[-1] == "run: stopped"
    deadline = time.monotonic() + 30
    while not all(gone(pid) for pid, _ in started.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert all(gone(pid) for pid, _ in started.values())
    assert all(port_closed(port) for _, port in started.values())
