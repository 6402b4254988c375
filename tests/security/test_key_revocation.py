"""An API key revoked with `python -m gateway.keys revoke` stops working on every gateway within
about a second, with the production key cache (30 s) on two gateway processes that both served the
key moments before: the revocation travels as a `key.revoked` event, not by the cache expiring."""

from __future__ import annotations

import asyncio
import json
import sys
from uuid import uuid4

import httpx
import pytest

from switchboard.testing.system import GATEWAY

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

PRODUCTION_KEY_CACHE = {"SWITCHBOARD_GATEWAY_KEY_CACHE_SECONDS": "30"}
WITHIN = 10.0
"""Well under the 30 s cache: a gateway that waits for its cache to expire fails."""


async def _revoke(env, account_id: str, key: str) -> str:
    prefix = "_".join(key.split("_")[:2])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.keys", "revoke", "--account", account_id, prefix,
        env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode() + err.decode()


async def test_a_revoked_key_stops_working_on_every_gateway_at_once(secured, sec) -> None:
    replicas = [secured.system.start(GATEWAY, replica=r, extra_env=PRODUCTION_KEY_CACHE) for r in (2, 3)]
    try:
        await secured.system.wait_ready(timeout=120)
        urls = [r.base_url + sec.MCP_PATH for r in replicas]
        key = await secured.new_key("revoked everywhere")
        body, protocol = sec.mcp_message("2025", "tools/list")

        async def status(http: httpx.AsyncClient, url: str) -> int:
            headers = {**secured.headers(f"revoke-{uuid4().hex[:8]}"), **protocol, "X-API-Key": key}
            return (await http.post(url, content=json.dumps(body), headers=headers)).status_code

        async with httpx.AsyncClient(timeout=30) as http:
            assert [await status(http, url) for url in urls] == [200, 200]  # now cached on both
            said = await _revoke(secured.env, secured.ours.account_id, key)
            assert "could not announce" not in said
            deadline = asyncio.get_running_loop().time() + WITHIN
            statuses = [200, 200]
            while statuses != [401, 401] and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
                statuses = [await status(http, url) for url in urls]
            assert statuses == [401, 401], "a gateway still accepted the revoked key from its cache"
            assert (await http.post(urls[0], content=json.dumps(body), headers={**secured.headers("x"), **protocol})).status_code == 200
    finally:
        for replica in replicas:
            secured.system.stop(replica)
