"""No phone number, API key or admin token reaches a span or a log, even when a client puts it in a
query string: a `?phone=...` lookup on an admin API, a key or token tried as a query parameter on
the MCP endpoint and on each admin API. The spans of every process are read from their file."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl
from uuid import uuid4

import httpx
import pytest

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

PHONE = "+14155550187"


def _spans(secured) -> list[dict]:
    if not secured.spans.exists():
        return []
    return [json.loads(line) for line in secured.spans.read_text().splitlines() if line.strip()]


async def test_query_strings_with_secrets_reach_no_span_and_no_log(secured, sec) -> None:
    marker = uuid4().hex[:12]
    token = secured.env["SWITCHBOARD_ADMIN_TOKEN"]
    key = secured.ours.api_key
    secrets = [PHONE, PHONE[1:], key, token]
    query = {"phone": PHONE, "token": token, "api_key": key, "marker": marker}
    account = secured.ours.account_id
    async with httpx.AsyncClient(timeout=30) as http:
        admin = [
            f"{secured.urls['contacts']}/admin/v1/accounts/{account}/contacts",
            f"{secured.urls['persona']}/admin/v1/accounts/{account}/users",
            f"{secured.urls['leads']}/admin/v1/accounts/{account}/leads",
            f"{secured.urls['call-control']}/admin/v1/accounts/{account}/transfer-rules",
        ]
        for url in admin:
            await http.get(url, params=query, headers=secured.admin_headers)
        body, protocol = sec.mcp_message("2025", "tools/list")
        headers = {**secured.headers(f"redact-{marker}"), **protocol}
        answer = await http.post(secured.mcp_url, params=query, content=json.dumps(body), headers=headers)
        assert answer.status_code == 200

    ours = "phone=REDACTED&token=REDACTED&api_key=REDACTED&marker=REDACTED"

    def services_with_our_query() -> set[str]:
        return {s["service"] for s in _spans(secured) if s["attributes"].get("url.query") == ours}

    for _ in range(100):  # the spans are written as each request ends
        if len(services_with_our_query()) >= len(admin):
            break
        await asyncio.sleep(0.1)
    assert len(services_with_our_query()) == len(admin), "an admin API made no span with its query redacted"
    for span in _spans(secured):
        query = span["attributes"].get("url.query")
        if query:
            assert all(value == "REDACTED" for _, value in parse_qsl(query, keep_blank_values=True)), span

    everything = secured.spans.read_text()
    for secret in secrets:
        assert secret not in everything
    for running in secured.system.running:
        written = running.log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in written, f"{running.label} logged a secret"
