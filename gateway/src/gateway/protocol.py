"""uvicorn's httptools protocol with the two limits it lacks: the size of a request head and the time
it may take to arrive.

uvicorn bounds neither (httptools keeps growing a header as long as bytes come, and nothing times a
header that trickles in); a server behind no proxy must, so this subclass does it where the bytes
are parsed, before any ASGI task exists:

- a request line plus header fields larger than `max_header_bytes` is answered 431;
- a request head not complete within `header_timeout` of its first byte (or of the connection's
  opening, for a connection that sends nothing) is answered 408;

both as JSON with `Connection: close`, and the connection is closed. What follows the head (the
body, the tool call) is timed by the edge (`gateway.edge`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

HEADER_LINE_OVERHEAD = 4
"""': ' and CRLF around each header field, counted as the client sent them."""


def plain_answer(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, written before any ASGI app runs."""
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops and uvicorn calls `send_400_response`."""


class EdgeProtocol(HttpToolsProtocol):
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        self._head_bytes = 0
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        counting = self._awaiting_head
        super().data_received(data)
        if counting and self._awaiting_head and not self.transport.is_closing():
            # The head is still incomplete: everything received since it began belongs to it.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._head_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + HEADER_LINE_OVERHEAD)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse_too_large()
            return
        self._answer(plain_answer(400, "Bad Request", "bad_request", "The request is not valid HTTP/1.1."))

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._too_large = True
            raise HeadTooLarge

    def _refuse_too_large(self) -> None:
        log.info("refused a request head over %d bytes", self.max_header_bytes)
        self._answer(
            plain_answer(
                431,
                "Request Header Fields Too Large",
                "headers_too_large",
                f"The request line and headers must be at most {self.max_header_bytes} bytes in total.",
            )
        )

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined head behind a request still being answered; that one is timed
        log.info("closed a connection whose request head did not arrive within %g s", self.header_timeout)
        self._answer(
            plain_answer(
                408, "Request Timeout", "request_timeout", "The request headers did not arrive in time."
            )
        )

    def _answer(self, answer: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()


def edge_protocol(*, max_header_bytes: int, header_timeout: float) -> type[EdgeProtocol]:
    """The protocol class for uvicorn's `http=`, with these limits."""
    return type(
        "EdgeProtocol",
        (EdgeProtocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout},
    )
