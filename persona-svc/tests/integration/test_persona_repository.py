"""The Mongo stores on the real database: replace-or-insert by key, unique tool names, account scoping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from persona_svc.model import Account, CustomTool, TransferToQueueDefinition, User
from persona_svc.repository import DuplicateName, create_indexes, mongo_repositories

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def queue_tool(tool_id: str, name: str, account_id: str = "acme") -> CustomTool:
    definition = TransferToQueueDefinition(name=name, description="Sales.", queue_id="sales")
    return CustomTool(account_id=account_id, persona_id="front", tool_id=tool_id, definition=definition, updated_at=NOW)


@pytest.fixture
async def repos(database):
    await create_indexes(database)
    await create_indexes(database)  # again, as every restart does
    return mongo_repositories(database)


async def test_put_creates_then_replaces_and_reads_back_typed(repos) -> None:
    account = Account(account_id="acme", name="Acme", timezone="Europe/Berlin", country="DE", updated_at=NOW)
    assert await repos.accounts.put(account) is True
    assert await repos.accounts.put(account.model_copy(update={"name": "Acme 2"})) is False
    assert await repos.accounts.get(account_id="acme") == account.model_copy(update={"name": "Acme 2"})
    assert await repos.accounts.list_all() == [account.model_copy(update={"name": "Acme 2"})]


async def test_concurrent_puts_of_one_id_leave_one_document(repos, database) -> None:
    users = [
        User(account_id="acme", user_id="ann", name=f"Ann {i}", extension="201", updated_at=NOW) for i in range(20)
    ]
    results = await asyncio.gather(*(repos.users.put(u) for u in users), return_exceptions=True)
    assert all(isinstance(r, bool) for r in results)
    assert await database["users"].count_documents({"account_id": "acme", "user_id": "ann"}) == 1


async def test_tool_names_are_unique_in_a_persona_on_insert_and_on_replace(repos) -> None:
    assert await repos.tools.put(queue_tool("t1", "sales"))
    assert await repos.tools.put(queue_tool("t2", "support"))
    with pytest.raises(DuplicateName):
        await repos.tools.put(queue_tool("t3", "sales"))
    with pytest.raises(DuplicateName):
        await repos.tools.put(queue_tool("t2", "sales"))
    assert await repos.tools.put(queue_tool("t1", "sales", account_id="other"))
    assert [t.name for t in await repos.tools.list("acme", persona_id="front", name="sales")] == ["sales"]


async def test_every_read_and_delete_is_scoped_to_its_account(repos) -> None:
    for account_id in ("acme", "other"):
        await repos.users.put(
            User(account_id=account_id, user_id="ann", name=account_id, extension="201", updated_at=NOW)
        )
    assert [u.name for u in await repos.users.list("acme")] == ["acme"]
    assert await repos.users.delete_all("acme") == 1
    assert await repos.users.get(account_id="acme", user_id="ann") is None
    assert (await repos.users.get(account_id="other", user_id="ann")).name == "other"


async def test_documents_are_stored_under_their_key_joined_by_slashes(repos, database) -> None:
    await repos.users.put(User(account_id="acme", user_id="ann", name="Ann", extension="201", updated_at=NOW))
    await repos.tools.put(queue_tool("t1", "sales"))
    user = await database["users"].find_one({"_id": "acme/ann"})
    assert (user["account_id"], user["user_id"]) == ("acme", "ann")
    tool = await database["tools"].find_one({"_id": "acme/front/t1"})
    assert (tool["account_id"], tool["persona_id"], tool["tool_id"], tool["name"]) == ("acme", "front", "t1", "sales")
    assert await repos.users.delete(account_id="acme", user_id="ann") is True
    assert await database["users"].find_one({"_id": "acme/ann"}) is None


async def test_a_personas_tool_set_follows_every_write_of_its_tools(repos) -> None:
    async def names(account_id: str = "acme", persona_id: str = "front") -> list[str]:
        return [t.name for t in await repos.tools.of_persona(account_id, persona_id)]

    assert await names() == []
    await repos.tools.put(queue_tool("t2", "support"))
    await repos.tools.put(queue_tool("t1", "sales"))
    await repos.tools.put(queue_tool("t1", "sales", account_id="other"))
    assert await names() == ["sales", "support"]
    await repos.tools.put(queue_tool("t1", "orders"))
    assert await names() == ["orders", "support"]
    with pytest.raises(DuplicateName):
        await repos.tools.put(queue_tool("t1", "support"))
    assert await names() == ["orders", "support"]
    assert await repos.tools.of_persona("acme", "front") == await repos.tools.list("acme", persona_id="front")
    assert await repos.tools.delete(account_id="acme", persona_id="front", tool_id="t2") is True
    assert await names() == ["orders"]
    assert await repos.tools.delete_all("acme", persona_id="front") == 1
    assert await names() == []
    assert await names("other") == ["sales"]
    assert await repos.tools.delete_all("other") == 1
    assert await names("other") == []


async def test_concurrent_writes_of_one_personas_tools_leave_a_set_equal_to_them(repos) -> None:
    await asyncio.gather(*(repos.tools.put(queue_tool(f"t{i:02}", f"tool{i:02}")) for i in range(20)))
    assert [t.tool_id for t in await repos.tools.of_persona("acme", "front")] == [f"t{i:02}" for i in range(20)]
    await asyncio.gather(
        *(repos.tools.delete(account_id="acme", persona_id="front", tool_id=f"t{i:02}") for i in range(0, 20, 2))
    )
    assert await repos.tools.of_persona("acme", "front") == await repos.tools.list("acme", persona_id="front")
    assert len(await repos.tools.of_persona("acme", "front")) == 10
