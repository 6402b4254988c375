"""The API Request tool's SSRF table, end to end: each target is configured as a tool through
persona-svc's admin API and called through the gateway. Every one is refused — when saved (422) or
when run (a tool error the model can read) — and no connection reaches the listeners on blocked
loopback addresses (127.0.0.1, 127.0.0.2 and ::1, one port).

The case list is persona-svc's own unit-level table, loaded from its test module, plus what only
the running system can show: this machine's host name and network, a model-supplied redirect
target, and `{{variable}}` values that try to change the host, scheme or headers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

import httpx
import pytest

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

BLOCKED_HOSTS = ("127.0.0.1", "127.0.0.2", "::1")


def persona_egress_tests() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "persona-svc" / "tests" / "test_persona_egress.py"
    spec = importlib.util.spec_from_file_location("persona_egress_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PERSONA_EGRESS = persona_egress_tests()


def own_names() -> list[str]:
    """This machine's host name, when it resolves to an address that is not public."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        return []
    return [f"http://{name}:{{p}}/"] if any(not ipaddress.ip_address(a).is_global for a in addresses) else []


SYSTEM_ONLY = [
    "http://127.0.0.2:{p}/",
    "http://[::ffff:127.0.0.2]:{p}/",
    "http://127.0.0.1:{p}/admin/v1/accounts",
    "https://127.0.0.1:{p}/",
    "http://localhost:{p}/ucp/v2/mcp",
    "http://[::1]:{p}/ucp/v2/mcp",
    "http://192.0.2.2:{p}/",
    "http://[fd00::2]:{p}/",
    "http://[fe80::1%25lo]:{p}/",
    "http://127.0.0.1:{a}/redirect?to=http://127.0.0.2:{p}/",
    "http://127.0.0.1:{a}/redirect?to=http://[::ffff:127.0.0.1]:{p}/&status=308",
    "http://127.0.0.1:{a}/redirect?to=https://localhost:{p}/",
    *own_names(),
]

TEMPLATES_REFUSED_WHEN_SAVED = [
    "http://{{host}}:{p}/",
    "http://127.0.0.1:{{port}}/",
    "{{scheme}}://127.0.0.1:{p}/",
    "http://public.example@{{host}}/",
    "http://{{host}}.public.example/",
    "http://127.0.0.1:{p}{{path}}",
    "http://user@127.0.0.1:{p}/{{path}}",
    "javascript:fetch('http://127.0.0.1:{p}/')//{{x}}",
]

VALUES_THAT_TRY_TO_MOVE_THE_REQUEST = [
    "@127.0.0.2:{p}",
    "//127.0.0.2:{p}/x",
    "http://127.0.0.2:{p}/",
    "../../redirect?to=http://127.0.0.2:{p}/",
    "%2F%2F127.0.0.2:{p}",
    "#@127.0.0.2:{p}",
    "\\\\127.0.0.2:{p}\\x",
]


class Listener:
    """TCP listeners on the blocked loopback addresses, one port, counting every connection."""

    def __init__(self) -> None:
        self.connections: dict[str, int] = {host: 0 for host in BLOCKED_HOSTS}
        self.servers: list[asyncio.Server] = []
        self.port = 0

    async def start(self) -> None:
        for _ in range(20):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
            try:
                for host in BLOCKED_HOSTS:
                    self.servers.append(await asyncio.start_server(self._counter(host), host, port))
            except OSError:
                await self.stop()
                continue
            self.port = port
            return
        raise RuntimeError("no port free on every blocked address")

    def _counter(self, host: str) -> Any:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections[host] += 1
            writer.close()

        return accepted

    @property
    def total(self) -> int:
        return sum(self.connections.values())

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()
        self.servers = []


@pytest.fixture(scope="module")
async def listener() -> AsyncIterator[Listener]:
    listener = Listener()
    await listener.start()
    yield listener
    await listener.stop()


@pytest.fixture(scope="module")
def redirector() -> Iterator[int]:
    """persona-svc's test API (/echo, /redirect?to=) on 127.0.0.1: the only address an account opens."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), PERSONA_EGRESS._Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@dataclass
class Account:
    """An account of its own for a group of cases; each configured URL gets a persona with one tool,
    so every call's tool list is short."""

    account_id: str
    key: str
    admin: str
    tools: dict[str, str] = field(default_factory=dict)
    configured: int = 0


async def make_account(http: httpx.AsyncClient, secured: Any, name: str, allowlist: list[dict[str, Any]]) -> Account:
    account_id = f"{name}-{uuid4().hex[:6]}"
    admin = secured.persona_admin(account_id)
    body = {"name": name, "timezone": "UTC", "country": "US", "egress_allowlist": allowlist}
    assert (await http.put(admin, json=body)).status_code == 201
    return Account(account_id, await secured.new_key("ssrf", account_id), admin)


async def configure(http: httpx.AsyncClient, account: Account, url: str, **definition: Any) -> httpx.Response:
    account.configured += 1
    persona = f"case-{account.configured:03d}"
    assert (await http.put(f"{account.admin}/personas/{persona}", json={"name": persona})).status_code == 201
    body = {"kind": "api_request", "name": "partner_api", "description": "Call the partner API.", "url": url}
    response = await http.put(f"{account.admin}/personas/{persona}/tools/partner", json={**body, **definition})
    if response.status_code == 201:
        account.tools[url] = persona
    return response


async def call(secured: Any, sec: Any, account: Account, url: str, arguments: dict[str, Any]) -> dict[str, Any]:
    message, protocol = sec.tool_call("2025", "partner_api", arguments)
    headers = {
        **sec.JSON_HEADERS,
        **protocol,
        "X-API-Key": account.key,
        "account_id": account.account_id,
        "persona_id": account.tools[url],
        "call_id": f"ssrf-{uuid4().hex[:10]}",
    }
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(secured.mcp_url, json=message, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def call_all(secured: Any, sec: Any, calls: list[tuple[Account, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The calls, a few at a time (the system serves concurrent calls; the test need not wait in line)."""
    gate = asyncio.Semaphore(6)

    async def one(account: Account, url: str, arguments: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            return await call(secured, sec, account, url, arguments)

    return await asyncio.gather(*(one(*c) for c in calls))


def refused_clearly(result: dict[str, Any]) -> bool:
    text = result["content"][0]["text"]
    return result["isError"] is True and text.startswith("This API request is not allowed: ") and text.endswith(".")


TABLE = list(dict.fromkeys([*PERSONA_EGRESS.SSRF, *SYSTEM_ONLY]))


async def test_every_ssrf_target_is_refused_end_to_end_and_no_listener_is_reached(
    secured, sec, listener, redirector
) -> None:
    async with httpx.AsyncClient(headers=secured.admin_headers, timeout=30) as http:
        closed = await make_account(http, secured, "ssrf-closed", [])
        opened = await make_account(http, secured, "ssrf-redirect", [{"host": "127.0.0.1", "port": redirector}])
        saved, refused_when_saved = [], []
        for template in TABLE:
            url = template.format(p=listener.port, a=redirector)
            account = opened if "{a}" in template else closed
            response = await configure(http, account, url)
            if response.status_code == 422:
                assert any(e["loc"][-1] == "url" for e in response.json()["detail"]), response.text
                refused_when_saved.append(url)
            else:
                assert response.status_code == 201, response.text
                saved.append((account, url))

    results = await call_all(secured, sec, [(account, url, {}) for account, url in saved])
    not_refused = [(url, r["content"][0]["text"]) for (_, url), r in zip(saved, results) if not refused_clearly(r)]
    assert not_refused == []
    assert listener.connections == {host: 0 for host in BLOCKED_HOSTS}
    assert len(TABLE) >= 25 and len(saved) + len(refused_when_saved) == len(TABLE)


async def test_the_allowlisted_api_is_reached(secured, sec, redirector) -> None:
    """The refusals above are the guard's: the same path through the system reaches an opened API."""
    async with httpx.AsyncClient(headers=secured.admin_headers, timeout=30) as http:
        account = await make_account(http, secured, "ssrf-control", [{"host": "127.0.0.1", "port": redirector}])
        url = f"http://127.0.0.1:{redirector}/echo/ok"
        assert (await configure(http, account, url)).status_code == 201
    result = await call(secured, sec, account, url, {})
    assert result["isError"] is False and result["structuredContent"]["status_code"] == 200


async def test_placeholders_in_the_scheme_host_or_port_are_refused_when_saved(secured, listener) -> None:
    async with httpx.AsyncClient(headers=secured.admin_headers, timeout=30) as http:
        account = await make_account(http, secured, "ssrf-templates", [])
        for template in TEMPLATES_REFUSED_WHEN_SAVED:
            url = template.replace("{p}", str(listener.port))
            variables = [{"name": n, "type": "text"} for n in ("host", "port", "scheme", "path", "x") if f"{{{{{n}}}}}" in url]
            response = await configure(http, account, url, variables=variables)
            assert response.status_code == 422, (url, response.text)


async def test_variable_values_cannot_move_the_request(secured, sec, listener, redirector) -> None:
    """Values are data: percent-encoded in the path and query, refused with a line break in a header.
    A tool whose own query names a redirect target gets each hop checked like the first URL."""
    base = f"http://127.0.0.1:{redirector}"
    variables = [{"name": "v", "type": "text"}]
    async with httpx.AsyncClient(headers=secured.admin_headers, timeout=30) as http:
        account = await make_account(http, secured, "ssrf-values", [{"host": "127.0.0.1", "port": redirector}])
        in_path = f"{base}/echo/{{{{v}}}}"
        in_redirect = f"{base}/redirect?to={{{{v}}}}"
        in_header = f"{base}/echo/header"
        assert (await configure(http, account, in_path, variables=variables)).status_code == 201
        assert (await configure(http, account, in_redirect, variables=variables)).status_code == 201
        header = [{"name": "X-Order", "value": "{{v}}"}]
        assert (await configure(http, account, in_header, variables=variables, headers=header)).status_code == 201

    values = [{"v": value.format(p=listener.port)} for value in VALUES_THAT_TRY_TO_MOVE_THE_REQUEST]
    echoed = await call_all(secured, sec, [(account, in_path, v) for v in values])
    assert all(e["isError"] is False and '"path": "/echo/' in e["structuredContent"]["body"] for e in echoed), echoed
    redirected = await call_all(secured, sec, [(account, in_redirect, v) for v in values])
    assert all(r["isError"] is True for r in redirected), redirected
    smuggled = await call(secured, sec, account, in_header, {"v": f"1\r\nHost: 127.0.0.2:{listener.port}"})
    assert smuggled["isError"] is True and "line break" in smuggled["content"][0]["text"]
    assert listener.connections == {host: 0 for host in BLOCKED_HOSTS}
