"""The filters a MongoDB client sends, for tests that prove a code path reads and writes by `_id`
alone (the one filter the embedded FerretDB serves from an index; any other scans a collection).

    log = QueryLog()
    client = AsyncMongoClient(uri, event_listeners=[log])
    log.recording = True; ...; log.recording = False
    assert all(query.by_id for query in log.seen)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pymongo import monitoring


class Query(NamedTuple):
    command: str
    """find, count, aggregate, distinct, update, delete or findAndModify."""
    collection: str
    filter: dict[str, Any]

    @property
    def by_id(self) -> bool:
        """The filter is one string `_id` and nothing else."""
        return list(self.filter) == ["_id"] and isinstance(self.filter["_id"], str)


class QueryLog(monitoring.CommandListener):
    """Every query, update and delete a client sends while `recording`, to `database` if given
    (an update or delete of several statements counts once per statement)."""

    def __init__(self, database: str | None = None) -> None:
        self.database = database
        self.recording = False
        self.seen: list[Query] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.recording or (self.database is not None and event.database_name != self.database):
            return
        command, name = event.command, event.command_name
        match name:
            case "find" | "count" | "aggregate" | "distinct":
                self.seen.append(Query(name, command[name], dict(command.get("filter", command.get("query", {})))))
            case "update":
                self.seen += [Query(name, command[name], dict(u["q"])) for u in command["updates"]]
            case "delete":
                self.seen += [Query(name, command[name], dict(d["q"])) for d in command["deletes"]]
            case "findAndModify":
                self.seen.append(Query(name, command[name], dict(command.get("query", {}))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
