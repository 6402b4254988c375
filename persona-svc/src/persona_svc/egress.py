"""The egress-guarded HTTP client of the API Request tool.

Every hop of a request (the first URL and each redirect) goes through the same gate:

1. only http and https, no user info, a host that is a name or an address in any notation
   (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`, `[::ffff:127.0.0.1]` are all 127.0.0.1);
2. the name is resolved once, and every address it resolves to must be public, or opened by the
   account's allowlist; loopback, private, link-local, CGNAT, multicast, reserved, documentation
   and IPv6 local ranges are refused, and addresses embedded in IPv6 (IPv4-mapped, NAT64, 6to4)
   are judged as the IPv4 address they carry;
3. the connection is opened to the address that was checked, never to a second resolution: the
   transport's network backend accepts exactly that host and port and dials the pinned address,
   while TLS still verifies the certificate against the host name.

Cloud metadata endpoints, unspecified, broadcast and multicast addresses stay closed even to an
allowlist. The whole exchange is bounded by one timeout, the response is read up to a size cap,
and the body handed to the model is text with control characters removed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.trace import SpanKind

from switchboard.contracts.persona import ApiResponse
from switchboard.messaging.errors import Refused, Unavailable
from switchboard.telemetry import tracer

from persona_svc.model import EgressRule
from persona_svc.templates import RenderedRequest

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

INTERNAL: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = [
    ("this network", _V4("0.0.0.0/8")),
    ("private", _V4("10.0.0.0/8")),
    ("carrier-grade NAT", _V4("100.64.0.0/10")),
    ("loopback", _V4("127.0.0.0/8")),
    ("link-local", _V4("169.254.0.0/16")),
    ("private", _V4("172.16.0.0/12")),
    ("IETF protocol assignments", _V4("192.0.0.0/24")),
    ("documentation", _V4("192.0.2.0/24")),
    ("6to4 relay", _V4("192.88.99.0/24")),
    ("private", _V4("192.168.0.0/16")),
    ("benchmarking", _V4("198.18.0.0/15")),
    ("documentation", _V4("198.51.100.0/24")),
    ("documentation", _V4("203.0.113.0/24")),
    ("loopback", _V6("::1/128")),
    ("IPv4-compatible", _V6("::/96")),
    ("discard", _V6("100::/64")),
    ("local-use NAT64", _V6("64:ff9b:1::/48")),
    ("IETF protocol assignments", _V6("2001::/23")),
    ("documentation", _V6("2001:db8::/32")),
    ("documentation", _V6("3fff::/20")),
    ("segment routing", _V6("5f00::/16")),
    ("unique local", _V6("fc00::/7")),
    ("link-local", _V6("fe80::/10")),
    ("site-local", _V6("fec0::/10")),
]
"""Closed unless the account's allowlist opens them."""

NEVER: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = [
    ("unspecified", _V4("0.0.0.0/32")),
    ("unspecified", _V6("::/128")),
    ("broadcast", _V4("255.255.255.255/32")),
    ("multicast", _V4("224.0.0.0/4")),
    ("multicast", _V6("ff00::/8")),
    ("reserved", _V4("240.0.0.0/4")),
    ("cloud metadata", _V4("169.254.169.254/32")),
    ("cloud metadata", _V4("169.254.170.2/32")),
    ("cloud metadata", _V4("100.100.100.200/32")),
    ("cloud metadata", _V4("192.0.0.192/32")),
    ("cloud metadata", _V6("fd00:ec2::254/128")),
]
"""Closed even when an allowlist would open them."""

NAT64 = _V6("64:ff9b::/96")
SIIT = _V6("::ffff:0:0:0/96")
NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0[xX][0-9a-fA-F]*)$")
TEXT_TYPES = re.compile(r"^(text/|application/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded))", re.I)
UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
REDIRECTS = {301, 302, 303, 307, 308}


class EgressRefused(Exception):
    """The destination is not allowed; the message names the rule, never a secret."""


@dataclass(frozen=True)
class EgressPolicy:
    allowlist: Sequence[EgressRule] = ()


@dataclass(frozen=True)
class Destination:
    """A checked hop: the host as the URL names it, and the one address the connection may use."""

    scheme: str
    host: str
    port: int
    address: IPAddress


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, SIIT, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in SIIT or address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def classify(address: IPAddress) -> tuple[str, bool] | None:
    """None for a public address; else (why, whether an allowlist may open it)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            verdict = classify(inner)
            return (f"{verdict[0]} (inside an IPv6 address)", verdict[1]) if verdict else None
    for reason, network in NEVER:
        if network.version == address.version and address in network:
            return reason, False
    for reason, network in INTERNAL:
        if network.version == address.version and address in network:
            return reason, True
    if not address.is_global:
        return "not publicly routable", True
    return None


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any notation inet_aton accepts (decimal, octal, hex, 1 to 4 parts).

    None when the host is a name; EgressRefused when it looks numeric but is not an address.
    """
    labels = host.removesuffix(".").split(".")
    if not all(NUMERIC_LABEL.match(label) for label in labels):
        return None
    if len(labels) > 4:
        raise EgressRefused("the host looks like an IP address but is not one")
    try:
        numbers = [
            int(label, 16) if label[:2].lower() == "0x" else int(label, 8 if len(label) > 1 and label[0] == "0" else 10)
            for label in labels
        ]
    except ValueError:
        raise EgressRefused("the host looks like an IP address but is not one") from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise EgressRefused("the host looks like an IP address but is not one")
    value = last
    for position, number in enumerate(head):
        value |= number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


def _allowed_by(rule: EgressRule, host: str, port: int, address: IPAddress) -> bool:
    if rule.port is not None and rule.port != port:
        return False
    network = rule.network
    if network is not None:
        return network.version == address.version and address in network
    return rule.host == host


class EgressGuard:
    def __init__(self, resolver: Resolver = system_resolver) -> None:
        self._resolver = resolver

    async def check(self, url: httpx.URL, policy: EgressPolicy) -> Destination:
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise EgressRefused(f"only http and https can be used, not {scheme or 'a URL without a scheme'}")
        if url.userinfo:
            raise EgressRefused("a URL with a user name or password cannot be used")
        host = url.raw_host.decode("ascii").lower()
        if not host:
            raise EgressRefused("the URL has no host")
        port = url.port or (443 if scheme == "https" else 80)
        addresses = await self._addresses(host.removesuffix("."), port)
        if not addresses:
            raise EgressRefused("the host name does not resolve")
        for address in addresses:
            verdict = classify(address)
            if verdict is None:
                continue
            reason, may_open = verdict
            name = host.removesuffix(".")
            if not may_open or not any(_allowed_by(rule, name, port, address) for rule in policy.allowlist):
                raise EgressRefused(f"its destination is a {reason} address")
        return Destination(scheme, host, port, addresses[0])

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        loose = parse_ipv4_loose(host)
        if loose is not None:
            return [loose]
        try:
            return await self._resolver(host, port)
        except (OSError, UnicodeError) as e:
            raise EgressRefused("the host name does not resolve") from e


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Dials the checked address for the checked host and port; refuses any other connection."""

    def __init__(self, destination: Destination, inner: httpcore.AsyncNetworkBackend) -> None:
        self._destination = destination
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        if (host.lower(), port) != (self._destination.host, self._destination.port):
            raise httpcore.ConnectError(f"connection to {host}:{port} was not checked")
        return await self._inner.connect_tcp(
            str(self._destination.address),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with a connection pool whose only way out is the pinned backend.

    httpx takes no network backend, so the pool it built is replaced; request mapping and error
    translation stay httpx's own.
    """

    def __init__(
        self, destination: Destination, ssl_context: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend
    ) -> None:
        super().__init__(verify=ssl_context, trust_env=False, retries=0)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=1,
            max_keepalive_connections=0,
            retries=0,
            network_backend=_PinnedBackend(destination, backend),
        )


@dataclass
class EgressClient:
    """Sends a rendered request through the guard and returns what the model may read."""

    guard: EgressGuard = field(default_factory=EgressGuard)
    ssl_context: ssl.SSLContext = field(default_factory=httpx.create_ssl_context)
    network_backend: httpcore.AsyncNetworkBackend = field(default_factory=httpcore.AnyIOBackend)
    max_response_bytes: int = 262_144
    max_body_chars: int = 4000
    max_redirects: int = 3
    user_agent: str = "Switchboard-ApiRequest/1.0"

    async def send(self, request: RenderedRequest, policy: EgressPolicy, *, timeout: float) -> ApiResponse:
        if timeout <= 0:
            raise Unavailable("There is no time left to call the API; try again.")
        try:
            async with asyncio.timeout(timeout):
                return await self._follow(request, policy, timeout)
        except EgressRefused as e:
            log.warning("API request refused: %s", e)
            raise Refused(f"This API request is not allowed: {e}.") from None
        except TimeoutError:
            raise Unavailable("The API did not answer in time.") from None
        except httpx.RemoteProtocolError:
            # Also how httpx reports a redirect to a malformed URL.
            raise Unavailable("The API sent an answer that could not be read.") from None
        except (httpx.HTTPError, httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError) as e:
            log.warning("API request failed: %s", type(e).__name__)
            raise Unavailable("The API could not be reached; try again later.") from None

    async def _follow(self, request: RenderedRequest, policy: EgressPolicy, timeout: float) -> ApiResponse:
        method, url, headers, body = request.method, request.url, list(request.headers), request.body
        for hop in range(self.max_redirects + 1):
            destination = await self.guard.check(url, policy)
            # Our own span instead of httpx's: its URL attribute would carry template values
            # (a caller's number in a path or query) into telemetry.
            with tracer.start_as_current_span(method, kind=SpanKind.CLIENT) as span, suppress_http_instrumentation():
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "server.address": destination.host,
                        "server.port": destination.port,
                        "network.peer.address": str(destination.address),
                    }
                )
                async with httpx.AsyncClient(
                    transport=_PinnedTransport(destination, self.ssl_context, self.network_backend),
                    trust_env=False,
                    follow_redirects=False,
                    timeout=httpx.Timeout(timeout),
                    headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"},
                ) as client:
                    async with client.stream(method, url, headers=headers, content=body) as response:
                        span.set_attribute("http.response.status_code", response.status_code)
                        location = response.headers.get("location")
                        if response.status_code not in REDIRECTS or location is None:
                            return await self._read(response)
                        if hop == self.max_redirects:
                            raise EgressRefused("the API redirected too many times")
            next_url = url.join(location)
            if (next_url.scheme, next_url.host, next_url.port) != (url.scheme, url.host, url.port):
                headers = []
            if response.status_code == 303 or (response.status_code in (301, 302) and method != "HEAD"):
                method, body = "GET", None
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            url = next_url
        raise EgressRefused("the API redirected too many times")

    async def _read(self, response: httpx.Response) -> ApiResponse:
        content = bytearray()
        truncated = False
        async for chunk in response.aiter_raw():
            room = self.max_response_bytes - len(content)
            if len(chunk) > room:
                content += chunk[:room]
                truncated = True
                break
            content += chunk
        content_type = response.headers.get("content-type")
        coding = response.headers.get("content-encoding", "identity").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate"):
            decoded, cut_short = self._decompress(bytes(content))
            truncated = truncated or cut_short
        elif coding == "identity":
            decoded = bytes(content)
        else:
            decoded = None
        if decoded is None:
            text, cut = f"(a response encoded as {coding[:50]} is not shown)", False
        else:
            text, cut = self._text(decoded, content_type, response.encoding or "utf-8")
        return ApiResponse(
            status_code=response.status_code,
            ok=response.is_success,
            body=text,
            truncated=truncated or cut,
            content_type=content_type[:200] if content_type else None,
        )

    def _decompress(self, content: bytes) -> tuple[bytes | None, bool]:
        """Inflate at most max_response_bytes: a small compressed body cannot become a huge one."""
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)
        try:
            data = inflater.decompress(content, self.max_response_bytes)
        except zlib.error:
            return None, False
        return data, bool(inflater.unconsumed_tail)

    def _text(self, content: bytes, content_type: str | None, encoding: str) -> tuple[str, bool]:
        if content and content_type and not TEXT_TYPES.match(content_type.strip()):
            return f"({len(content)} bytes of {content_type.split(';')[0].strip()[:100]} not shown)", False
        try:
            text = content.decode(encoding, errors="replace")
        except LookupError:
            text = content.decode("utf-8", errors="replace")
        text = UNSAFE_TEXT.sub("", text)
        if len(text) > self.max_body_chars:
            return text[: self.max_body_chars], True
        return text, False
