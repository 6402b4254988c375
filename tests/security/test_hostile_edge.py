"""A tenant with one valid API key, attacking the gateway's HTTP edge through raw sockets: slow
headers, bodies that never arrive, giant headers, dropped connections. Each attack must cost the
attacker only its own share, be cut off with a clear answer, and leave no traceback in the log.
Other accounts keep being served meanwhile (served or not served: latencies are the bench's)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

STALLED = 66
"""More requests than the gateway serves at once (64): what one key held to starve every account."""

WAIT = 30.0
"""How long a test waits for an answer the gateway owes; the read timeouts are a few seconds."""


def _address(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or 80


def _head(url: str, headers: dict[str, str], *, content_length: int) -> bytes:
    host, port = _address(url)
    lines = ["POST /ucp/v2/mcp HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _status(reader: asyncio.StreamReader, wait: float | None = WAIT) -> int | None:
    """The status of the answer on this connection, or None when it closed without one."""
    try:
        line = await asyncio.wait_for(reader.readline(), wait)
    except (ConnectionError, TimeoutError):
        return None
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


@contextlib.asynccontextmanager
async def _connections(url: str, count: int) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    host, port = _address(url)
    opened = [await asyncio.open_connection(host, port) for _ in range(count)]
    try:
        yield opened
    finally:
        for _, writer in opened:
            writer.close()
        for _, writer in opened:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _tools_list(secured, sec, key: str | None = None, account_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    body, protocol = sec.mcp_message("2025", "tools/list")
    headers = {**secured.headers(f"edge-{uuid4().hex[:10]}"), **protocol}
    if key is not None:
        headers["X-API-Key"] = key
    if account_id is not None:
        headers["account_id"] = account_id
        headers["persona_id"] = sec.RIVAL_PERSONA
    return json.dumps(body).encode(), headers


def _rival_call(secured, sec) -> tuple[bytes, dict[str, str]]:
    return _tools_list(secured, sec, secured.rival.api_key, secured.rival.account_id)


async def test_a_header_trickled_line_by_line_is_cut_off_with_408(secured) -> None:
    host, port = _address(secured.mcp_url)
    async with _connections(secured.mcp_url, 1) as [(reader, writer)]:
        writer.write(f"POST /ucp/v2/mcp HTTP/1.1\r\nHost: {host}:{port}\r\n".encode())
        await writer.drain()
        answered = asyncio.create_task(_status(reader, wait=None))
        for i in range(60):  # one header line each half second: 30 s of header if nobody stops it
            if answered.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(f"X-Slow-{i}: {'a' * 10}\r\n".encode())
                await writer.drain()
            await asyncio.sleep(0.5)
        if not answered.done():
            answered.cancel()
            pytest.fail("the gateway still waited for the rest of the header")
        assert await answered == 408


async def test_a_connection_that_sends_nothing_is_closed(secured) -> None:
    async with _connections(secured.mcp_url, 1) as [(reader, _)]:
        try:
            closed = await asyncio.wait_for(reader.read(), WAIT)
        except TimeoutError:
            pytest.fail("the gateway held a silent connection open")
        assert closed == b"" or closed.startswith(b"HTTP/1.1 408")


async def test_giant_headers_are_refused_with_431(secured, sec) -> None:
    body, headers = _tools_list(secured, sec)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        for size in (20_000, 2_000_000):
            padded = {**headers, "X-Padding": "p" * size}
            try:
                response = await http.post(secured.mcp_url, content=body, headers=padded)
            except httpx.HTTPError:  # the gateway may close before it reads all of it
                continue
            assert response.status_code == 431, response.text
            assert response.json()["error"] == "headers_too_large"
        many = {**headers, **{f"X-Field-{i}": "v" * 60 for i in range(400)}}
        response = await http.post(secured.mcp_url, content=body, headers=many)
        assert response.status_code == 431
        assert (await http.post(secured.mcp_url, content=body, headers=headers)).status_code == 200


async def test_a_body_that_never_arrives_is_answered_408(secured, sec) -> None:
    body, headers = _tools_list(secured, sec)
    async with _connections(secured.mcp_url, 1) as [(reader, writer)]:
        writer.write(_head(secured.mcp_url, headers, content_length=len(body)) + body[:10])
        await writer.drain()
        assert await _status(reader) == 408


async def test_one_keys_stalled_bodies_do_not_starve_another_account(secured, sec) -> None:
    stalling_key = await secured.new_key("stalls its bodies")
    body, headers = _tools_list(secured, sec, stalling_key)
    async with _connections(secured.mcp_url, STALLED) as stalled:
        for _, writer in stalled:
            writer.write(_head(secured.mcp_url, headers, content_length=len(body)))
            await writer.drain()
        async with httpx.AsyncClient(timeout=WAIT) as http:
            # Once one more request of the stalling key is refused as over its share, its stalled
            # requests are counted (a 503 meanwhile: the gateway is still checking their key).
            for _ in range(100):
                more = await http.post(secured.mcp_url, content=body, headers=headers)
                if more.status_code == 429:
                    break
                await asyncio.sleep(0.05)
            assert more.status_code == 429, more.text
            assert more.json()["error"] == "too_many_in_flight" and int(more.headers["Retry-After"]) >= 1

            rival_body, rival_headers = _rival_call(secured, sec)
            served = await http.post(secured.mcp_url, content=rival_body, headers=rival_headers)
            assert served.status_code == 200, served.text
            assert "result" in served.json()

            ours = await http.post(secured.mcp_url, content=body, headers=secured.headers(f"edge-{uuid4().hex[:8]}"))
            assert ours.status_code == 200, "another key of the same account is served too"


async def test_clients_that_disconnect_leave_an_info_line_not_a_traceback(secured, sec) -> None:
    log = secured.system.get("gateway").log
    start = log.stat().st_size
    body, headers = _tools_list(secured, sec)
    async with _connections(secured.mcp_url, 5) as dropped:
        for _, writer in dropped:
            writer.write(_head(secured.mcp_url, headers, content_length=len(body)) + body[:5])
            await writer.drain()
        await asyncio.sleep(0.5)  # the requests reach the gateway before their sockets close
    async with httpx.AsyncClient(timeout=WAIT) as http:
        for _ in range(50):  # the gateway has handled the closes once it logged them
            written = log.read_text(errors="replace")[start:]
            if written.count("disconnected") >= 5 or "Traceback" in written:
                break
            await asyncio.sleep(0.1)
        body, headers = _tools_list(secured, sec)
        assert (await http.post(secured.mcp_url, content=body, headers=headers)).status_code == 200
    written = log.read_text(errors="replace")[start:]
    assert "Traceback" not in written and "ERROR" not in written, written[-3000:]
    assert "disconnected" in written
