"""The base of every model that crosses a process boundary."""

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """Immutable, strict about unknown fields: a typo in a producer is an error, not a dropped value."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoArgs(Contract):
    """Arguments of a command that takes none."""
