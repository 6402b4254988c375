"""The egress guard against a real HTTP server on 127.0.0.1, and a table of SSRF attempts that must
all be refused with no connection reaching a listener on a blocked address."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest

from switchboard.contracts.persona import ApiResponse
from switchboard.messaging.errors import Refused, Unavailable

from persona_svc.egress import (
    Destination,
    EgressClient,
    EgressGuard,
    EgressPolicy,
    EgressRefused,
    classify,
    parse_ipv4_loose,
    _PinnedBackend,
    system_resolver,
)
from persona_svc.model import EgressRule
from persona_svc.templates import RenderedRequest


class _Api(BaseHTTPRequestHandler):
    """A small API: /echo answers with what it received; other paths exercise the client's limits."""

    protocol_version = "HTTP/1.1"
    hits: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        type(self).hits.append(self.path)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith("/echo"):
            echo = {
                "method": self.command,
                "path": url.path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
            self._send(200, json.dumps(echo).encode())
        elif url.path == "/redirect":
            self._send(int(query.get("status", ["302"])[0]), b"", Location=query["to"][0])
        elif url.path == "/big":
            self._send(200, b"x" * 1_000_000, "text/plain")
        elif url.path == "/binary":
            self._send(200, bytes(range(256)) * 10, "application/octet-stream")
        elif url.path == "/gzip":
            self._send(200, gzip.compress(b"y" * 5_000_000), "text/plain", Content_Encoding="gzip")
        elif url.path == "/controls":
            self._send(200, "ok\x00\x1b[31m\u202eevil\nline".encode(), "text/plain; charset=utf-8")
        elif url.path == "/missing":
            self._send(404, b'{"error": "no such order"}')
        elif url.path == "/slow":
            time.sleep(2)
            self._send(200, b"late")
        else:
            self._send(400, b"unknown path")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class Listener:
    """A TCP listener on a blocked address that counts every connection it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.servers: list[asyncio.Server] = []
        self.port = 0

    async def start(self) -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        first = await asyncio.start_server(accepted, "127.0.0.1", 0)
        self.port = first.sockets[0].getsockname()[1]
        self.servers.append(first)
        self.servers.append(await asyncio.start_server(accepted, "::1", self.port))

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()


class CountingBackend(httpcore.AsyncNetworkBackend):
    """The real network backend, recording every address the client dials."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.dialed: list[tuple[str, int]] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.dialed.append((host, port))
        return await self.inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class FakeDns:
    """Names under .test resolve from a table (with a counter); anything else through the system."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int):
        self.calls.append(host)
        if host not in self.table:
            return await system_resolver(host, port)
        answer = self.table[host]
        if answer and isinstance(answer[0], list):
            answer = answer[min(self.calls.count(host), len(answer)) - 1]
        return [ipaddress.ip_address(a) for a in answer]


@pytest.fixture(scope="module")
def api_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    listener = Listener()
    await listener.start()
    yield listener
    await listener.stop()


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns(
        {
            "rebind.test": ["127.0.0.1"],
            "mixed.test": ["93.184.216.34", "127.0.0.1"],
            "v6.rebind.test": ["::1"],
            "127.0.0.1.nip.test": ["127.0.0.1"],
            "metadata.test": ["169.254.169.254"],
            "api.internal.test": ["127.0.0.1"],
            "flip.test": [["127.0.0.1"], ["10.255.255.1"]],
            "nxdomain.test": [],
        }
    )


@pytest.fixture
def backend() -> CountingBackend:
    return CountingBackend()


@pytest.fixture
def client(dns: FakeDns, backend: CountingBackend) -> EgressClient:
    return EgressClient(guard=EgressGuard(dns), network_backend=backend, max_response_bytes=65_536, max_body_chars=2000)


@pytest.fixture
def policy(api_port: int) -> EgressPolicy:
    return EgressPolicy(
        [
            EgressRule(host="127.0.0.1", port=api_port),
            EgressRule(host="api.internal.test"),
            EgressRule(host="metadata.test"),
        ]
    )


def get(url: str, headers: list[tuple[str, str]] | None = None) -> RenderedRequest:
    return RenderedRequest("GET", httpx.URL(url), headers or [], None)


SSRF = [
    "http://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "http://LOCALHOST.:{p}/",
    "http://2130706433:{p}/",
    "http://0x7f000001:{p}/",
    "http://017700000001:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://127.1:{p}/",
    "http://127.0.1:{p}/",
    "http://0x7f.0.0.1:{p}/",
    "http://0x7f.1:{p}/",
    "http://[::1]:{p}/",
    "http://[0:0:0:0:0:0:0:1]:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://[::ffff:7f00:1]:{p}/",
    "http://[::127.0.0.1]:{p}/",
    "http://[64:ff9b::7f00:1]:{p}/",
    "http://[2002:7f00:1::]:{p}/",
    "http://[::ffff:0:7f00:1]:{p}/",
    "http://0.0.0.0:{p}/",
    "http://0:{p}/",
    "http://[::]:{p}/",
    "http://rebind.test:{p}/",
    "http://v6.rebind.test:{p}/",
    "http://mixed.test:{p}/",
    "http://127.0.0.1.nip.test:{p}/",
    "http://1.2.3.4.5:{p}/",
    "http://nxdomain.test:{p}/",
    "http://user:pw@127.0.0.1:{p}/",
    "http://127.0.0.1:{a}@127.0.0.1:{p}/",
    "ftp://127.0.0.1:{p}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{p}/_GET",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.test/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://10.0.0.1:{p}/",
    "http://172.16.0.1:{p}/",
    "http://192.168.1.1:{p}/",
    "http://100.64.0.1:{p}/",
    "http://198.18.0.1:{p}/",
    "http://[fe80::1]:{p}/",
    "http://[fc00::1]:{p}/",
    "http://224.0.0.1:{p}/",
    "http://255.255.255.255:{p}/",
    "http://127.0.0.1:{a}/redirect?to=http://127.0.0.1:{p}/",
    "http://127.0.0.1:{a}/redirect?to=http://[::1]:{p}/&status=307",
    "http://127.0.0.1:{a}/redirect?to=http://localhost:{p}/&status=301",
    "http://127.0.0.1:{a}/redirect?to=http://2130706433:{p}/&status=308",
    "http://127.0.0.1:{a}/redirect?to=http://rebind.test:{p}/&status=303",
    "http://127.0.0.1:{a}/redirect?to=file:///etc/passwd",
    "http://127.0.0.1:{a}/redirect?to=http://169.254.169.254/",
]


@pytest.mark.parametrize("template", SSRF)
async def test_ssrf_attempts_are_refused_and_nothing_reaches_a_blocked_listener(
    template: str,
    client: EgressClient,
    policy: EgressPolicy,
    listener: Listener,
    backend: CountingBackend,
    api_port: int,
) -> None:
    url = template.format(p=listener.port, a=api_port)
    try:
        request = get(url)
    except httpx.InvalidURL:
        request = None  # not even a URL: nothing can be sent
    if request is not None:
        with pytest.raises(Refused) as refused:
            await client.send(request, policy, timeout=5)
        assert refused.value.message.startswith("This API request is not allowed: ")
    assert listener.connections == 0
    assert all(port == api_port for _, port in backend.dialed)


def test_the_ssrf_table_is_large_enough() -> None:
    assert len(SSRF) >= 25


async def test_happy_path_through_the_allowlist(
    client: EgressClient, policy: EgressPolicy, api_port: int, backend: CountingBackend
) -> None:
    request = RenderedRequest(
        "POST",
        httpx.URL(f"http://127.0.0.1:{api_port}/echo/a%2Fb?q=%2B1"),
        [("Authorization", "Bearer k"), ("Content-Type", "application/json")],
        b'{"x": 1}',
    )
    response = await client.send(request, policy, timeout=5)
    assert isinstance(response, ApiResponse) and response.ok and response.status_code == 200
    echo = json.loads(response.body)
    assert (echo["method"], echo["path"], echo["query"], echo["body"]) == (
        "POST",
        "/echo/a%2Fb",
        {"q": ["+1"]},
        '{"x": 1}',
    )
    assert echo["headers"]["authorization"] == "Bearer k"
    assert echo["headers"]["user-agent"].startswith("Switchboard-ApiRequest")
    assert backend.dialed == [("127.0.0.1", api_port)]


async def test_a_listener_is_closed_without_an_allowlist(client: EgressClient, api_port: int) -> None:
    with pytest.raises(Refused, match="loopback"):
        await client.send(get(f"http://127.0.0.1:{api_port}/echo"), EgressPolicy(), timeout=5)


async def test_a_name_is_resolved_once_and_the_connection_pinned(
    client: EgressClient, dns: FakeDns, backend: CountingBackend, api_port: int
) -> None:
    # flip.test answers 127.0.0.1 first and 10.255.255.1 afterwards: a second lookup would dial elsewhere.
    policy = EgressPolicy([EgressRule(host="127.0.0.1", port=api_port)])
    response = await client.send(get(f"http://flip.test:{api_port}/echo"), policy, timeout=5)
    assert response.ok and json.loads(response.body)["headers"]["host"] == f"flip.test:{api_port}"
    assert dns.calls == ["flip.test"]
    assert backend.dialed == [("127.0.0.1", api_port)]


async def test_an_allowlisted_host_name_opens_its_internal_address(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    response = await client.send(get(f"http://api.internal.test:{api_port}/echo"), policy, timeout=5)
    assert response.ok


async def test_same_origin_redirects_are_followed_with_their_headers(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    url = f"http://127.0.0.1:{api_port}/redirect?to=/echo/next"
    response = await client.send(get(url, [("Authorization", "Bearer k")]), policy, timeout=5)
    echo = json.loads(response.body)
    assert echo["path"] == "/echo/next" and echo["headers"]["authorization"] == "Bearer k"


async def test_a_redirect_to_another_host_is_checked_again_and_loses_the_tool_headers(
    client: EgressClient, policy: EgressPolicy, api_port: int, dns: FakeDns
) -> None:
    url = f"http://127.0.0.1:{api_port}/redirect?to=http://api.internal.test:{api_port}/echo/moved"
    response = await client.send(get(url, [("Authorization", "Bearer k")]), policy, timeout=5)
    echo = json.loads(response.body)
    assert echo["path"] == "/echo/moved" and "authorization" not in echo["headers"]
    assert dns.calls == ["api.internal.test"]


async def test_a_303_turns_a_post_into_a_get(client: EgressClient, policy: EgressPolicy, api_port: int) -> None:
    request = RenderedRequest(
        "POST", httpx.URL(f"http://127.0.0.1:{api_port}/redirect?to=/echo&status=303"), [], b"data"
    )
    echo = json.loads((await client.send(request, policy, timeout=5)).body)
    assert (echo["method"], echo["body"]) == ("GET", "")


async def test_too_many_redirects_are_refused(client: EgressClient, policy: EgressPolicy, api_port: int) -> None:
    hop = "/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/redirect%25253Fto%25253D/echo"
    with pytest.raises(Refused, match="redirected too many times"):
        await client.send(get(f"http://127.0.0.1:{api_port}{hop}"), policy, timeout=5)


async def test_the_response_is_capped_and_cut_for_the_model(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    response = await client.send(get(f"http://127.0.0.1:{api_port}/big"), policy, timeout=5)
    assert response.truncated and response.body == "x" * 2000


async def test_a_compressed_response_cannot_grow_past_the_cap(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    response = await client.send(get(f"http://127.0.0.1:{api_port}/gzip"), policy, timeout=5)
    assert response.truncated and response.body == "y" * 2000


async def test_binary_bodies_are_described_not_shown(client: EgressClient, policy: EgressPolicy, api_port: int) -> None:
    response = await client.send(get(f"http://127.0.0.1:{api_port}/binary"), policy, timeout=5)
    assert response.body == "(2560 bytes of application/octet-stream not shown)"


async def test_control_and_bidi_characters_are_removed(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    response = await client.send(get(f"http://127.0.0.1:{api_port}/controls"), policy, timeout=5)
    assert response.body == "ok[31mevil\nline"


async def test_an_error_status_is_a_result_for_the_model(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    response = await client.send(get(f"http://127.0.0.1:{api_port}/missing"), policy, timeout=5)
    assert (response.status_code, response.ok, response.body) == (404, False, '{"error": "no such order"}')


async def test_a_slow_api_is_unavailable_within_the_timeout(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    with pytest.raises(Unavailable, match="did not answer in time"):
        await client.send(get(f"http://127.0.0.1:{api_port}/slow"), policy, timeout=0.3)


async def test_no_time_left_means_no_request(
    client: EgressClient, policy: EgressPolicy, api_port: int, backend: CountingBackend
) -> None:
    with pytest.raises(Unavailable, match="no time left"):
        await client.send(get(f"http://127.0.0.1:{api_port}/echo"), policy, timeout=0)
    assert backend.dialed == []


async def test_a_closed_port_is_unavailable(client: EgressClient, listener: Listener) -> None:
    await listener.stop()
    policy = EgressPolicy([EgressRule(host="127.0.0.1", port=listener.port)])
    with pytest.raises(Unavailable, match="could not be reached"):
        await client.send(get(f"http://127.0.0.1:{listener.port}/"), policy, timeout=5)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.257", "10.1.1.1"),
        ("0", "0.0.0.0"),
        ("example.com", None),
        ("0x7f.example", None),
    ],
)
def test_every_ipv4_notation_is_read(text: str, address: str | None) -> None:
    parsed = parse_ipv4_loose(text)
    assert (str(parsed) if parsed else None) == address


@pytest.mark.parametrize("text", ["08.0.0.1", "1.2.3.4.5", "256.1.1.1", "4294967296", "0xfffffffff"])
def test_numbers_that_are_not_addresses_are_refused(text: str) -> None:
    with pytest.raises(EgressRefused):
        parse_ipv4_loose(text)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", ("loopback", True)),
        ("169.254.169.254", ("cloud metadata", False)),
        ("::ffff:169.254.169.254", ("cloud metadata (inside an IPv6 address)", False)),
        ("100.100.100.200", ("cloud metadata", False)),
        ("224.0.0.251", ("multicast", False)),
        ("ff02::1", ("multicast", False)),
        ("0.0.0.0", ("unspecified", False)),
        ("fd12::1", ("unique local", True)),
        ("203.0.113.7", ("documentation", True)),
    ],
)
def test_addresses_are_classified(address: str, expected) -> None:
    assert classify(ipaddress.ip_address(address)) == expected


async def test_a_redirect_to_a_malformed_url_is_not_followed(
    client: EgressClient, policy: EgressPolicy, api_port: int
) -> None:
    with pytest.raises(Unavailable, match="could not be read"):
        await client.send(get(f"http://127.0.0.1:{api_port}/redirect?to=http://%5B::1"), policy, timeout=5)


async def test_the_pinned_backend_dials_only_the_checked_host_and_port(backend: CountingBackend) -> None:
    pinned = _PinnedBackend(Destination("http", "api.internal.test", 8080, ipaddress.ip_address("127.0.0.1")), backend)
    for host, port in (("elsewhere.test", 8080), ("api.internal.test", 8081)):
        with pytest.raises(httpcore.ConnectError):
            await pinned.connect_tcp(host, port)
    with pytest.raises(httpcore.ConnectError):
        await pinned.connect_unix_socket("/var/run/docker.sock")
    assert backend.dialed == []
