"""Everything that travels between Switchboard's processes: one definition, imported everywhere."""

from switchboard.contracts.base import Contract, NoArgs
from switchboard.contracts.envelope import (
    CallContext,
    Command,
    ErrorCode,
    ErrorInfo,
    Reply,
    new_command_id,
    utcnow,
)
from switchboard.contracts.operations import OPERATIONS, Operation, operations_of
from switchboard.contracts.tools import GLOBAL_TOOL_COMMANDS, GlobalTool
from switchboard.contracts.topics import REPLY_TOPIC_PREFIX, Topic
from switchboard.contracts.types import CommandType

__all__ = [
    "GLOBAL_TOOL_COMMANDS",
    "OPERATIONS",
    "REPLY_TOPIC_PREFIX",
    "CallContext",
    "Command",
    "CommandType",
    "Contract",
    "ErrorCode",
    "ErrorInfo",
    "GlobalTool",
    "NoArgs",
    "Operation",
    "Reply",
    "Topic",
    "new_command_id",
    "operations_of",
    "utcnow",
]
