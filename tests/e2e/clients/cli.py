"""The command line every client script of the suite shares: where the gateway is, the headers of
the call, and one JSON document on stdout for the test to read. Standard library only, so a
script also runs in an environment of its own (`uv run --isolated --with ...`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def arguments(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:9443/ucp/v2/mcp")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME: VALUE",
        help="a header of every request (X-API-Key, account_id, persona_id, call_id, caller_id_number)",
    )
    p.add_argument("--phone", required=True, help="the number lookup_contact looks up")
    p.add_argument("--gemini-base-url", help="google-genai only: where the Gemini API answers")
    p.add_argument("--mode", default="auto", help="MCP Python SDK only: the client's protocol era")
    args = p.parse_args(argv)
    args.headers = dict(_header(h) for h in args.header)
    return args


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise SystemExit(f"--header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def emit(report: dict[str, Any]) -> None:
    json.dump(report, sys.stdout, default=str)
    sys.stdout.write("\n")
