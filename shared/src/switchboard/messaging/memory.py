"""An in-memory bus with the requester's interface, for unit tests of handlers and the gateway.

It drives the very same CommandProcessor the Kafka runtime uses (decode, deadline, idempotency,
handler, reply), minus the broker: what passes here differs from production only in transport.
"""

from __future__ import annotations

import asyncio

from switchboard.contracts import OPERATIONS, CallContext, Command, CommandType, Contract, Reply, Topic
from switchboard.messaging.errors import RequestTimeout
from switchboard.messaging.processor import CommandProcessor
from switchboard.messaging.requester import build_command, result_of


class InMemoryBus:
    REPLY_TO = "in-memory"

    def __init__(self) -> None:
        self._processors: dict[Topic, CommandProcessor] = {}
        self.sent: list[Command] = []

    def register(self, topic: Topic, processor: CommandProcessor) -> None:
        self._processors[topic] = processor

    async def request(
        self, type: CommandType, context: CallContext, args: Contract, *, timeout: float, command_id: str | None = None
    ) -> Contract:
        command = build_command(type, context, args, timeout=timeout, reply_to=self.REPLY_TO, command_id=command_id)
        return result_of(command, await self.send(command))

    async def send(self, command: Command) -> Reply:
        self.sent.append(command)
        processor = self._processors.get(OPERATIONS[command.type].topic)
        if processor is None:
            await asyncio.sleep(max(command.remaining(), 0))
            raise RequestTimeout(f"nothing consumes {OPERATIONS[command.type].topic}")
        try:
            async with asyncio.timeout(max(command.remaining(), 0)):
                processed = await processor.process(command.model_dump_json().encode())
        except TimeoutError:
            raise RequestTimeout(f"no reply to {command.type} within its deadline") from None
        if processed.reply is None:
            raise RequestTimeout(f"{command.type} was not answered ({processed.outcome})")
        return processed.reply
