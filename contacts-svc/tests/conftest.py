"""Local HTTP servers that speak the Google People API, Microsoft Graph contacts and both OAuth token
endpoints, closely enough for the connectors: the same paths, parameters, bodies and error shapes,
plus knobs for 401, 429, 5xx and answers that never come."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class LocalServer:
    def __init__(self, app: FastAPI) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        )
        self._task: asyncio.Task[None] | None = None
        self.base_url = ""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task:
            await self._task


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclass
class Behaviour:
    """What the next API requests get: scripted statuses first, then normal answers (or a stall)."""

    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    stall: bool = False


class FakeProvider:
    def __init__(self) -> None:
        self.refresh_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self.token_requests: list[dict[str, str]] = []
        self.api_requests: list[dict[str, Any]] = []
        self.behaviour = Behaviour()
        self.rotate_refresh_tokens = False
        self.token_status: int | None = None
        self._issued = 0
        self._release = asyncio.Event()
        self.server: LocalServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def reset(self) -> None:
        self.release()
        self.refresh_tokens.clear()
        self.access_tokens.clear()
        self.token_requests.clear()
        self.api_requests.clear()
        self.behaviour = Behaviour()
        self.rotate_refresh_tokens = False
        self.token_status = None
        self._release = asyncio.Event()

    def release(self) -> None:
        self._release.set()

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    async def token(self, request: Request) -> JSONResponse:
        form = dict((await request.form()).items())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        if self.token_status is not None:
            return JSONResponse({"error": "server_error"}, status_code=self.token_status)
        if form.get("grant_type") != "refresh_token" or form.get("client_id") != "client-id" or form.get("client_secret") != "client-secret":
            return JSONResponse({"error": "invalid_client", "error_description": "Unauthorized client."}, status_code=401)
        if form.get("refresh_token") not in self.refresh_tokens:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, status_code=400
            )
        self._issued += 1
        access = f"access-{id(self)}-{self._issued}"
        self.access_tokens.add(access)
        body: dict[str, Any] = {"access_token": access, "expires_in": 3599, "token_type": "Bearer", "scope": "contacts"}
        if self.rotate_refresh_tokens:
            rotated = f"refresh-{self._issued}"
            self.refresh_tokens.add(rotated)
            body["refresh_token"] = rotated
        return JSONResponse(body)

    async def guard(self, request: Request) -> JSONResponse | None:
        """The common front of an API request: record it, play the script, check the bearer token."""
        self.api_requests.append({"path": request.url.path, "params": dict(request.query_params)})
        if self.behaviour.statuses:
            status = self.behaviour.statuses.pop(0)
            headers = {"Retry-After": self.behaviour.retry_after} if status == 429 and self.behaviour.retry_after else {}
            return JSONResponse(self.error_body(status), status_code=status, headers=headers)
        if self.behaviour.stall:
            try:
                await asyncio.wait_for(self._release.wait(), timeout=30)
            except TimeoutError:
                pass
        authorization = request.headers.get("authorization", "")
        if authorization.removeprefix("Bearer ") not in self.access_tokens:
            return JSONResponse(self.error_body(401), status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return None

    def error_body(self, status: int) -> dict[str, Any]:
        raise NotImplementedError


class FakeGoogle(FakeProvider):
    """people.googleapis.com: `GET /v1/people:searchContacts`; oauth2.googleapis.com: `POST /token`."""

    def __init__(self) -> None:
        super().__init__()
        self.people: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.add_api_route("/token", self.token, methods=["POST"])
        self.app.add_api_route("/v1/people:searchContacts", self.search, methods=["GET"])

    def reset(self) -> None:
        super().reset()
        self.people.clear()

    def add_person(self, name: str, *phones: tuple[str, str | None], company: str | None = None, email: str | None = None) -> None:
        """`phones`: (value as typed, canonicalForm or None when Google could not compute one)."""
        index = len(self.people) + 1
        person: dict[str, Any] = {
            "resourceName": f"people/c{index}",
            "etag": f"%EgUBAgkLNxo{index}",
            "names": [
                {
                    "metadata": {"primary": True, "source": {"type": "CONTACT", "id": f"{index:x}"}},
                    "displayName": name,
                    "givenName": name.split()[0],
                    "displayNameLastFirst": name,
                    "unstructuredName": name,
                }
            ],
            "phoneNumbers": [
                {
                    "metadata": {"primary": i == 0, "source": {"type": "CONTACT", "id": f"{index:x}"}},
                    "value": value,
                    **({"canonicalForm": canonical} if canonical else {}),
                    "type": "mobile",
                    "formattedType": "Mobile",
                }
                for i, (value, canonical) in enumerate(phones)
            ],
        }
        if company:
            person["organizations"] = [{"metadata": {"primary": True}, "name": company}]
        if email:
            person["emailAddresses"] = [{"metadata": {"primary": True}, "value": email, "type": "work"}]
        self.people.append(person)

    def error_body(self, status: int) -> dict[str, Any]:
        name = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}.get(status, "UNAVAILABLE")
        return {"error": {"code": status, "message": f"The request failed: {name}.", "status": name}}

    async def search(self, request: Request) -> JSONResponse:
        refused = await self.guard(request)
        if refused is not None:
            return refused
        query = request.query_params.get("query")
        read_mask = request.query_params.get("readMask")
        if query is None or not read_mask:
            return JSONResponse(
                {"error": {"code": 400, "message": "query and readMask are required.", "status": "INVALID_ARGUMENT"}},
                status_code=400,
            )
        if query == "":
            return JSONResponse({})
        wanted = digits(query)
        results = []
        for person in self.people:
            for phone in person["phoneNumbers"]:
                forms = [phone.get("canonicalForm", ""), phone["value"]]
                if any(f.startswith(query) or (wanted and digits(f).startswith(wanted)) for f in forms):
                    fields = set(read_mask.split(","))
                    results.append({"person": {k: v for k, v in person.items() if k in fields | {"resourceName", "etag"}}})
                    break
        return JSONResponse({"results": results[: int(request.query_params.get("pageSize", 10))]} if results else {})


class FakeMicrosoft(FakeProvider):
    """graph.microsoft.com: `GET /v1.0/me/contacts` with $select/$top/$skip paging;
    login.microsoftonline.com: `POST /common/oauth2/v2.0/token`."""

    def __init__(self) -> None:
        super().__init__()
        self.contacts: list[dict[str, Any]] = []
        self.next_link_base: str | None = None
        self.app = FastAPI()
        self.app.add_api_route("/common/oauth2/v2.0/token", self.token, methods=["POST"])
        self.app.add_api_route("/v1.0/me/contacts", self.list_contacts, methods=["GET"])

    def reset(self) -> None:
        super().reset()
        self.contacts.clear()
        self.next_link_base = None

    def add_contact(
        self,
        name: str,
        *,
        mobile: str | None = None,
        business: list[str] | None = None,
        home: list[str] | None = None,
        company: str | None = None,
        email: str | None = None,
    ) -> None:
        given, _, surname = name.partition(" ")
        self.contacts.append(
            {
                "@odata.etag": 'W/"EQAAABYAAAA"',
                "id": f"AAMkAGI2TG93AAA{len(self.contacts)}=",
                "createdDateTime": "2025-01-01T10:00:00Z",
                "displayName": name,
                "givenName": given,
                "surname": surname or None,
                "companyName": company,
                "emailAddresses": [{"name": name, "address": email}] if email else [],
                "businessPhones": business or [],
                "homePhones": home or [],
                "mobilePhone": mobile,
            }
        )

    def error_body(self, status: int) -> dict[str, Any]:
        code = {401: "InvalidAuthenticationToken", 403: "ErrorAccessDenied", 429: "TooManyRequests"}.get(
            status, "ServiceNotAvailable"
        )
        return {"error": {"code": code, "message": f"{code}.", "innerError": {"request-id": "0000", "date": "2025-01-01T10:00:00"}}}

    async def list_contacts(self, request: Request) -> JSONResponse:
        refused = await self.guard(request)
        if refused is not None:
            return refused
        top = int(request.query_params.get("$top", 10))
        skip = int(request.query_params.get("$skip", 0))
        select = request.query_params.get("$select")
        fields = set(select.split(",")) | {"id", "@odata.etag"} if select else None
        page = [{k: v for k, v in c.items() if fields is None or k in fields} for c in self.contacts[skip : skip + top]]
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v1.0/$metadata#users('me')/contacts", "value": page}
        if skip + top < len(self.contacts):
            base = self.next_link_base or self.base_url
            select_part = f"$select={select}&" if select else ""
            body["@odata.nextLink"] = f"{base}/v1.0/me/contacts?{select_part}$top={top}&$skip={skip + top}"
        return JSONResponse(body)


@pytest.fixture(scope="module")
async def google_server() -> AsyncIterator[FakeGoogle]:
    fake = FakeGoogle()
    fake.server = LocalServer(fake.app)
    await fake.server.start()
    yield fake
    fake.release()
    await fake.server.stop()


@pytest.fixture(scope="module")
async def microsoft_server() -> AsyncIterator[FakeMicrosoft]:
    fake = FakeMicrosoft()
    fake.server = LocalServer(fake.app)
    await fake.server.start()
    yield fake
    fake.release()
    await fake.server.stop()


@pytest.fixture
async def google(google_server: FakeGoogle) -> AsyncIterator[FakeGoogle]:
    google_server.reset()
    yield google_server
    google_server.release()


@pytest.fixture
async def microsoft(microsoft_server: FakeMicrosoft) -> AsyncIterator[FakeMicrosoft]:
    microsoft_server.reset()
    yield microsoft_server
    microsoft_server.release()
