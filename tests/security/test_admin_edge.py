"""The admin APIs of every service check the token and the body size before they read a body."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = [pytest.mark.security, pytest.mark.timeout(120)]

ADMIN_PATHS = {
    "persona": "/admin/v1/accounts/acme",
    "contacts": "/admin/v1/accounts/acme/settings",
    "call-control": "/admin/v1/accounts/acme/transfer-rules",
    "leads": "/v1/accounts/acme/leads",
}


async def head_only(url: str, path: str, headers: dict[str, str]) -> bytes:
    """Send a PUT's headers announcing a 50 MB body, send none of it, and read the answer: a server
    that reads the body before it checks would wait for it (the read times out)."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    try:
        lines = [f"PUT {path} HTTP/1.1", f"Host: {where.netloc}", "Content-Type: application/json",
                 "Content-Length: 50000000", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


@pytest.mark.parametrize("service", sorted(ADMIN_PATHS))
async def test_no_token_is_401_before_the_body_arrives(secured, service) -> None:
    head = await head_only(secured.urls[service], ADMIN_PATHS[service], {})
    assert head.startswith(b"HTTP/1.1 401")


@pytest.mark.parametrize("service", sorted(ADMIN_PATHS))
async def test_an_oversized_body_is_413_before_it_is_read_even_with_the_token(secured, service) -> None:
    head = await head_only(secured.urls[service], ADMIN_PATHS[service], secured.admin_headers)
    assert head.startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize("service", sorted(ADMIN_PATHS))
async def test_every_admin_api_documents_the_gates_answers(secured, service) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        document = (await http.get(secured.urls[service] + "/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"413", "422"} <= codes, (service, method, path)
            if not path.startswith("/webhooks/"):
                assert "401" in codes, (service, method, path)
