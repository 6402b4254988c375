"""`Periodic`: a background pass every few seconds, for relays and sweeps."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class Periodic:
    """A background component that calls `run_once` every `interval` seconds until it is stopped.

    A pass that fails is logged and the next one runs on time: a relay or a sweep must outlive a
    broker or database outage.
    """

    def __init__(self, *, interval: float, name: str) -> None:
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> object:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("%s pass failed; next one in %.0f s", self._name, self._interval)
