"""Every admin API, driven by schemathesis from the OpenAPI document each running service publishes:
valid and invalid requests (positive and negative generation) with the admin token must never get a
5xx or show the server's insides; without the token every admin operation is a 401."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from switchboard.testing.audit import CleanRun

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", autouse=True)
async def clean_run(secured):
    """Besides its answers, the run must leave no ERROR, traceback or dead letter in the system."""
    audit = await CleanRun.begin(secured.system, secured.env)
    yield
    assert await audit.problems() == []

SERVICES = ["persona", "contacts", "leads", "call-control"]
EXAMPLES_PER_OPERATION = 5
OWN_SECRET = {"/webhooks/v1/call-events"}
"""Operations guarded by their own secret instead of the admin token."""

def openapi(secured: Any, service: str) -> Any:
    url = secured.urls[service] + "/openapi.json"
    published = httpx.get(url, timeout=30)
    assert published.status_code == 200 and published.json()["openapi"].startswith("3."), (
        f"{service} does not publish its OpenAPI at /openapi.json"
    )
    return schemathesis.openapi.from_url(url, timeout=30)


def problems(response: Any, case: Any, sec: Any) -> list[str]:
    found = []
    if response.status_code >= 500:
        found.append(f"{response.status_code}: {response.text[:300]}")
    sent = " ".join(str(part) for part in (case.body, case.path_parameters, case.query, case.headers))
    shown = " ".join(value for values in response.headers.values() for value in values)
    leaked = sec.leaks(f"{response.text} {shown}", sent)
    if leaked:
        found.append(f"shows {leaked}: {response.text[:300]}")
    return found


def generated(operation: Any, mode: GenerationMode, count: int) -> list[Any]:
    """The operation's first `count` examples in this mode, the same on every run."""
    cases: list[Any] = []

    @settings(max_examples=count, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        pass  # nothing of this mode can be generated for the operation
    return cases[:count]


@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_get_no_5xx_and_no_internals(secured, sec, service) -> None:
    schema = openapi(secured, service)
    base_url = secured.urls[service]
    session = requests.Session()
    sent: Counter[str] = Counter()
    found: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for case in generated(operation, mode, EXAMPLES_PER_OPERATION):
                response = case.call(base_url=base_url, headers=secured.admin_headers, session=session, timeout=30)
                sent[mode.value] += 1
                name = f"{operation.method.upper()} {operation.path} ({mode.value})"
                found.extend(f"{name} {problem}" for problem in problems(response, case, sec))
    print(f"{service}: {len(operations)} operations, {dict(sent)} requests")
    assert operations and sent["positive"] >= len(operations)
    assert found == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_admin_operation_refuses_a_request_without_the_token(secured, service) -> None:
    schema = openapi(secured, service)
    base_url = secured.urls[service]
    session = requests.Session()
    open_operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in OWN_SECRET:
            continue
        [case] = generated(operation, GenerationMode.POSITIVE, 1)
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}):
            response = case.call(base_url=base_url, headers=headers, session=session, timeout=30)
            if response.status_code != 401:
                open_operations.append(f"{operation.method.upper()} {operation.path} {headers}: {response.status_code}")
    assert open_operations == []
