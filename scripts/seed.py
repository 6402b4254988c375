"""The demo account: seeded into a running system through its admin APIs, and the welcome text.

`make run` (scripts/run.py) and the end-to-end tests call `seed`. Every write is an idempotent
`PUT`, so seeding twice changes nothing but `updated_at`; only the API key is new each time (keys
are stored hashed and cannot be shown again).

The demo's API Request tool calls `DemoApi`, a small order-status API served on loopback by the
process that seeds (run.py, a test). The persona service refuses loopback destinations unless the
account's egress allowlist opens them, so the demo account opens exactly that one address and
port, and nothing else.

    import sys; sys.path.insert(0, "<repo>/scripts"); import seed
    api = seed.DemoApi.start()
    demo = await seed.seed_system(env, urls, demo_api_url=api.url)
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx

DEMO_ADMIN_TOKEN = "demo-admin-token-for-local-use-only"
DEMO_KEY_PEPPER = "demo-key-pepper-for-local-use-only"
DEMO_WEBHOOK_SECRET = "demo-webhook-secret-for-local-use-only"
"""Defaults of `make run` only (an environment that sets its own wins); never use them in production."""

MCP_PATH = "/ucp/v2/mcp"
DEMO_API_PORT = 9505

ACCOUNT_ID = "demo"
PERSONA_ID = "reception"
QUEUE_ID = "support"
AVAILABLE_USER = "alice"
DND_USER = "bob"
CALLER_NUMBER = "+14155550100"
"""Jane Doe, a native contact: the caller of the demo call."""

TRANSFER_TO_USER_TOOL = "transfer_to_alice"
TRANSFER_TO_QUEUE_TOOL = "transfer_to_support"
API_REQUEST_TOOL = "check_order_status"

ORDERS = {
    "1001": {"order_id": "1001", "status": "shipped", "carrier": "UPS", "expected_delivery": "in 2 days"},
    "1002": {"order_id": "1002", "status": "processing", "carrier": None, "expected_delivery": "in 5 days"},
    "1003": {"order_id": "1003", "status": "delivered", "carrier": "USPS", "expected_delivery": None},
}


@dataclass(frozen=True)
class DemoSystem:
    """What was seeded: everything a client of the demo account needs to know."""

    api_key: str
    mcp_url: str
    account_id: str = ACCOUNT_ID
    persona_id: str = PERSONA_ID
    demo_api_url: str | None = None
    queue_id: str = QUEUE_ID
    available_user: str = AVAILABLE_USER
    dnd_user: str = DND_USER
    caller_number: str = CALLER_NUMBER
    transfer_to_user_tool: str = TRANSFER_TO_USER_TOOL
    transfer_to_queue_tool: str = TRANSFER_TO_QUEUE_TOOL
    api_request_tool: str = API_REQUEST_TOOL
    known_orders: tuple[str, ...] = tuple(ORDERS)
    contacts: dict[str, str] = field(default_factory=dict)
    """Native contacts: E.164 number -> name."""

    @property
    def custom_tools(self) -> list[str]:
        return sorted([self.api_request_tool, self.transfer_to_queue_tool, self.transfer_to_user_tool])

    def headers(self, call_id: str, *, caller_id_number: str | None = None) -> dict[str, str]:
        """The headers of one MCP request during call `call_id`."""
        headers = {
            "X-API-Key": self.api_key,
            "account_id": self.account_id,
            "persona_id": self.persona_id,
            "call_id": call_id,
        }
        if caller_id_number is not None:
            headers["caller_id_number"] = caller_id_number
        return headers


class _OrderStatus(BaseHTTPRequestHandler):
    """`GET /orders/{id}`: 200 with the order as JSON, or 404 with a JSON error."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
        path = urlsplit(self.path).path
        prefix, _, order_id = path.rpartition("/")
        order = ORDERS.get(order_id) if prefix == "/orders" else None
        if order is None:
            return self._answer(HTTPStatus.NOT_FOUND, {"error": f"There is no order {order_id or path!r}."})
        return self._answer(HTTPStatus.OK, order)

    def _answer(self, status: HTTPStatus, body: dict[str, object]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo's own output is the tool calls."""


class DemoApi:
    """The demo's order-status API on 127.0.0.1, served by a thread of the calling process."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="demo-api", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, port: int = 0) -> DemoApi:
        """Port 0 picks a free one."""
        return cls(ThreadingHTTPServer(("127.0.0.1", port), _OrderStatus))

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def next_christmas(today: date) -> date:
    christmas = date(today.year, 12, 25)
    return christmas if christmas >= today else date(today.year + 1, 12, 25)


def office_hours(today: date) -> dict[str, object]:
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday")
    weekly: dict[str, list[dict[str, str]]] = {day: [{"start": "09:00", "end": "17:00"}] for day in weekdays}
    weekly["saturday"] = [{"start": "10:00", "end": "14:00"}]
    return {"weekly": weekly, "holidays": [{"date": next_christmas(today).isoformat(), "name": "Christmas Day"}]}


def custom_tools(demo_api_url: str) -> dict[str, dict[str, object]]:
    return {
        TRANSFER_TO_USER_TOOL: {
            "kind": "transfer_to_user",
            "name": TRANSFER_TO_USER_TOOL,
            "description": "Transfer the caller to Alice Moreno, the account manager, for billing or contract questions.",
            "user_id": AVAILABLE_USER,
            "refuse_when_dnd": True,
        },
        TRANSFER_TO_QUEUE_TOOL: {
            "kind": "transfer_to_queue",
            "name": TRANSFER_TO_QUEUE_TOOL,
            "description": "Transfer the caller to the support team (the next free agent) for help with an order.",
            "queue_id": QUEUE_ID,
        },
        API_REQUEST_TOOL: {
            "kind": "api_request",
            "name": API_REQUEST_TOOL,
            "description": "Look up the delivery status of one of the caller's orders by its order number.",
            "method": "GET",
            "url": demo_api_url.rstrip("/") + "/orders/{{order_id}}",
            "variables": [
                {"name": "order_id", "type": "text", "description": "The order number the caller gives, e.g. 1001."}
            ],
            "timeout_seconds": 5,
        },
    }


CONTACTS = {
    "jane-doe": {
        "name": "Jane Doe",
        "company": "Doe Logistics",
        "email": "jane@doe-logistics.example",
        "phone_numbers": [{"number": CALLER_NUMBER, "label": "mobile"}],
    },
    "tom-becker": {
        "name": "Tom Becker",
        "company": "Becker Bakery",
        "phone_numbers": [{"number": "(212) 555-0199", "label": "work"}],
    },
}

USERS = {
    AVAILABLE_USER: {"name": "Alice Moreno", "extension": "201"},
    DND_USER: {"name": "Bob Chen", "number": "+12125550142"},
}


class SeedError(RuntimeError):
    """A write the seed needs was refused; the message names the request and the answer."""


async def _put(http: httpx.AsyncClient, url: str, body: object) -> dict[str, object]:
    response = await http.put(url, json=body)
    if response.status_code not in (200, 201):
        raise SeedError(f"PUT {url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


async def create_api_key(env: Mapping[str, str], account_id: str, label: str) -> str:
    """A new gateway API key, made by the gateway's own key tool (which prints it alone on stdout)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.keys",
        "create",
        "--account",
        account_id,
        "--label",
        label,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SeedError(f"python -m gateway.keys create failed ({process.returncode}): {err.decode()[-500:]}")
    return out.decode().strip()


async def seed_persona(
    http: httpx.AsyncClient, base_url: str, account_id: str, persona_id: str, demo_api_url: str, today: date
) -> None:
    """The account, its persona with office hours, users (one on DND), a queue and the custom tools."""
    api = urlsplit(demo_api_url)
    account = f"{base_url}/admin/v1/accounts/{account_id}"
    await _put(
        http,
        account,
        {
            "name": "Acme Supplies (demo)",
            "timezone": "America/New_York",
            "country": "US",
            "egress_allowlist": [{"host": api.hostname, "port": api.port}],
        },
    )
    await _put(http, f"{account}/personas/{persona_id}", {"name": "Reception", "office_hours": office_hours(today)})
    for user_id, body in USERS.items():
        await _put(http, f"{account}/users/{user_id}", body)
    await _put(http, f"{account}/users/{AVAILABLE_USER}/dnd", {"dnd": False})
    await _put(http, f"{account}/users/{DND_USER}/dnd", {"dnd": True})
    await _put(http, f"{account}/queues/{QUEUE_ID}", {"name": "Support team", "extension": "300"})
    for tool_id, body in custom_tools(demo_api_url).items():
        await _put(http, f"{account}/personas/{persona_id}/tools/{tool_id}", body)


async def seed_contacts(http: httpx.AsyncClient, base_url: str, account_id: str) -> dict[str, str]:
    """The native contacts; returns E.164 number -> name."""
    account = f"{base_url}/admin/v1/accounts/{account_id}"
    await _put(http, f"{account}/settings", {"region": "US"})
    seeded = {}
    for contact_id, body in CONTACTS.items():
        contact = (await _put(http, f"{account}/contacts/{contact_id}", body))["contact"]
        seeded.update({phone["number"]: contact["name"] for phone in contact["phone_numbers"]})
    return seeded


async def seed_system(
    env: Mapping[str, str],
    urls: Mapping[str, str],
    *,
    demo_api_url: str,
    account_id: str = ACCOUNT_ID,
    persona_id: str = PERSONA_ID,
    key_label: str = "demo",
    today: date | None = None,
) -> DemoSystem:
    """Seed the demo account into the running system at `urls` (process name -> base URL).

    `env` is the system's environment: the admin token and what the key tool needs (database, pepper).
    """
    headers = {"Authorization": f"Bearer {env['SWITCHBOARD_ADMIN_TOKEN']}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        _, contacts, _, key = await asyncio.gather(
            seed_persona(http, urls["persona"], account_id, persona_id, demo_api_url, today or date.today()),
            seed_contacts(http, urls["contacts"], account_id),
            _put(http, f"{urls['call-control']}/admin/v1/accounts/{account_id}/transfer-rules", {}),
            create_api_key(env, account_id, key_label),
        )
    return DemoSystem(
        api_key=key,
        mcp_url=f"{urls['gateway']}{MCP_PATH}",
        account_id=account_id,
        persona_id=persona_id,
        demo_api_url=demo_api_url,
        contacts=contacts,
    )


def seed(env: Mapping[str, str], urls: Mapping[str, str], **options: object) -> DemoSystem:
    """`seed_system` for callers without an event loop (run.py)."""
    return asyncio.run(seed_system(env, urls, **options))  # type: ignore[arg-type]


def welcome(demo: DemoSystem, urls: Mapping[str, str], env: Mapping[str, str]) -> str:
    """How to connect an agent to the demo account and place a simulated call."""
    token = env["SWITCHBOARD_ADMIN_TOKEN"]
    call_control = urls["call-control"]
    headers = demo.headers("demo-call-1", caller_id_number=demo.caller_number)
    header_lines = "\n".join(f"  {name}: {value}" for name, value in headers.items())
    inspector_headers = " ".join(f'--header "{name}: {value}"' for name, value in headers.items())
    place_call = json.dumps(
        {
            "account_id": demo.account_id,
            "call_id": "demo-call-1",
            "persona_id": demo.persona_id,
            "caller_number": demo.caller_number,
        }
    )
    return f"""
Switchboard is running.

MCP endpoint (Streamable HTTP): {demo.mcp_url}
API key: {demo.api_key}
  (a new key at every start; only its hash is stored, so it is shown only here)

Headers to send with every MCP request (call_id names the live call; caller_id_number is optional):
{header_lines}

Demo account {demo.account_id!r}, persona {demo.persona_id!r}: the six global tools plus custom tools
{", ".join(demo.custom_tools)}.
Users: {demo.available_user} (available), {demo.dnd_user} (on Do Not Disturb). Native contact: {demo.caller_number} (Jane Doe).

1. Start a simulated call (the simulated PBX of call-control; admin token {token}):
  curl -X POST {call_control}/pbx/v1/calls -H "Authorization: Bearer {token}" \\
       -H 'content-type: application/json' -d '{place_call}'

2. Call tools during it, e.g. with the MCP Inspector CLI:
  scripts/inspector --cli {demo.mcp_url} --transport http {inspector_headers} \\
       --method tools/call --tool-name is_office_open

3. See what the phone system did:
  curl "{call_control}/pbx/v1/calls/demo-call-1?account_id={demo.account_id}" -H "Authorization: Bearer {token}"

Or let the scripted demo agent walk a whole call (`scripts/run --demo` does it at start):
  scripts/uv run --frozen python scripts/demo_call.py --api-key {demo.api_key} \\
       --mcp-url {demo.mcp_url} --call-control-url {call_control}
"""


def print_welcome(demo: DemoSystem, urls: Mapping[str, str], env: Mapping[str, str]) -> None:
    print(welcome(demo, urls, env), flush=True)
