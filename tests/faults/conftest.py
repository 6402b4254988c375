"""The systems the fault tests break: one on the shared servers (its replicated services reach the
database through a proxy the tests control), one on a private Kafka and FerretDB that the broker
and database restart tests kill. Each is started once per test module that asks for it, and stopped
after it, so no idle system outlives its tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest

from switchboard.mongo import connect
from switchboard.testing.proxy import TcpProxy
from tests.faults.harness import FaultSystem, PrivateInfra, start_system, system_env


@pytest.fixture(scope="module")
async def database_proxy(infra) -> AsyncIterator[TcpProxy]:
    """Between the shared database and the replicated services (leads, call-control) of `shared_system`."""
    address = urlsplit(infra.mongo_uri)
    proxy = await TcpProxy.start(address.hostname or "127.0.0.1", address.port or 27017)
    yield proxy
    await proxy.stop()


@pytest.fixture(scope="module")
async def shared_system(infra, database_proxy: TcpProxy, tmp_path_factory) -> AsyncIterator[FaultSystem]:
    env = system_env(infra.kafka_bootstrap, infra.mongo_uri)
    mongo = connect(infra.mongo_uri, app_name="fault-tests")
    proxied = {"SWITCHBOARD_MONGO_URI": f"mongodb://{database_proxy.address}/?directConnection=true"}
    target = await start_system(env, tmp_path_factory.mktemp("faults-shared"), mongo, service_env=proxied)
    try:
        yield target
    finally:
        database_proxy.heal()
        target.system.stop_all()
        await target.drop_databases()
        await mongo.close()


@pytest.fixture(scope="module")
def private_infra(infra, tmp_path_factory) -> Iterator[PrivateInfra]:
    if infra.mode != "native":
        pytest.skip("the broker and database restarts run on native servers started by scripts/infra")
    servers = PrivateInfra.create(tmp_path_factory.mktemp("faults-infra"))
    try:
        servers.up()
        yield servers
    finally:
        servers.down()


@pytest.fixture(scope="module")
async def private_system(private_infra: PrivateInfra, tmp_path_factory) -> AsyncIterator[FaultSystem]:
    env = system_env(private_infra.kafka_bootstrap, private_infra.mongo_uri)
    mongo = connect(private_infra.mongo_uri, app_name="fault-tests")
    target = await start_system(env, tmp_path_factory.mktemp("faults-private"), mongo)
    try:
        yield target
    finally:
        target.system.stop_all()
        await mongo.close()
