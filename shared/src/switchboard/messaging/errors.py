"""Errors of the messaging layer: domain errors a handler raises, and what a requester sees."""

from switchboard.contracts import ErrorCode, ErrorInfo


class DomainError(Exception):
    """A business failure a handler reports; it becomes the reply's `{code, message}`.

    The message is read by the model on the other end: one sentence it can act on.
    """

    code: ErrorCode = ErrorCode.internal

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = ErrorCode.invalid_argument


class NotFound(DomainError):
    code = ErrorCode.not_found


class Refused(DomainError):
    code = ErrorCode.refused


class Conflict(DomainError):
    code = ErrorCode.conflict


class Unavailable(DomainError):
    code = ErrorCode.unavailable


class StoreUnavailable(Exception):
    """The service's database did not answer; the runtime retries until the command's deadline."""


class RequestError(Exception):
    """Base of what `Requester.request` raises instead of returning a result."""


class RequestFailed(RequestError):
    """The service answered with an error."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class RequestTimeout(RequestError):
    """No reply before the deadline. The command carries the same deadline, so nobody acts on it later."""


class Busy(RequestError):
    """Too many requests are waiting for replies in this process; refused at once."""
