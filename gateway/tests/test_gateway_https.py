"""The entry point's server configuration: HTTPS when a certificate and key are configured."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess

import httpx2
import pytest

from gateway.__main__ import GatewayServer, uvicorn_config
from gateway.app import create_app
from gateway.auth import create_key
from gateway.repository import InMemoryApiKeys
from gateway.settings import GatewaySettings
from switchboard.messaging.memory import InMemoryBus


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


async def test_https_serves_mcp_when_a_certificate_is_configured(certificate, responder, helpers) -> None:
    cert, key_file = certificate
    settings = GatewaySettings(key_pepper="unit-test-pepper-0123456789", tls_certfile=cert, tls_keyfile=key_file)
    bus = InMemoryBus()
    for topic, processor in responder.processors().items():
        bus.register(topic, processor)
    keys = InMemoryApiKeys()
    api_key = (await create_key(keys, settings.pepper(), helpers.ACCOUNT)).key
    config = uvicorn_config(settings, create_app(settings, requester=bus, keys=keys, events=False))
    assert config.ssl_certfile == cert and config.workers == 1
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = GatewayServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.05)
        transport = httpx2.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=cert))
        async with helpers.mcp_client(
            f"https://127.0.0.1:{port}/ucp/v2/mcp", helpers.headers(api_key), transport=transport
        ) as client:
            result = await client.call_tool("is_office_open", {})
        assert result.content[0].text == "Office is currently open"
        async with httpx2.AsyncClient(verify=False) as plain:
            with pytest.raises(httpx2.HTTPError):
                await plain.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.should_exit = True
        await task
        sock.close()
