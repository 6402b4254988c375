"""Every Kafka topic Switchboard uses. Services name these members, never string literals."""

from enum import StrEnum


class Topic(StrEnum):
    call_control_commands = "call-control.commands"
    contacts_commands = "contacts.commands"
    leads_commands = "leads.commands"
    persona_commands = "persona.commands"

    call_events = "call.events"
    lead_events = "lead.events"
    persona_events = "persona.events"
    contact_events = "contact.events"
    gateway_events = "gateway.events"

    @property
    def dead_letter(self) -> str:
        """Where a command topic's poison messages go: kept for inspection, never retried."""
        return f"{self.value}.dlq"


REPLY_TOPIC_PREFIX = "gateway.replies."
"""Each requester instance consumes its own reply topic, `gateway.replies.<instance id>`, so a reply
reaches exactly the replica that asked (no shared consumer group that could hand it to another)."""

COMMAND_TOPIC_PARTITIONS = 12
EVENT_TOPIC_PARTITIONS = 6
