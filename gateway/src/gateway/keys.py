"""`python -m gateway.keys create|list|revoke`: manage an account's API keys in the gateway's database.

`create` prints the new key once, alone on stdout (scripts read it from there); only its hash is
stored, so it cannot be shown again. `revoke` marks the key revoked in the database, then announces
it as a `key.revoked` event on `gateway.events`, which every gateway replica reads: they stop
accepting the key within about a second. When Kafka cannot be reached the revocation stands and the
command says so; replicas then stop accepting the key when their cache expires (`key_cache_seconds`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from gateway.auth import create_key
from gateway.model import ApiKeyRecord
from gateway.repository import INDEXES, MongoApiKeys
from gateway.settings import GatewaySettings, MissingSecret
from switchboard.contracts import Topic, utcnow
from switchboard.contracts.envelope import IDENTIFIER
from switchboard.contracts.keys import KeyRevoked
from switchboard.messaging import kafka
from switchboard.messaging.events import KafkaEventPublisher, ensure_event_topics
from switchboard.mongo import connect, ensure_indexes


def _account(value: str) -> str:
    if not re.match(IDENTIFIER, value):
        raise argparse.ArgumentTypeError("an account id is 1 to 128 letters, digits or . _ : -")
    return value


def _key_id(value: str) -> str:
    key_id = value.removeprefix("sbk_").split("_", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{16}", key_id):
        raise argparse.ArgumentTypeError("a key id looks like sbk_0123456789abcdef (as `list` shows it)")
    return key_id


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gateway.keys", description="Manage Switchboard gateway API keys.")
    commands = p.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key for an account and print it once")
    create.add_argument("--account", required=True, type=_account)
    create.add_argument("--label", default="", help="a note to recognise the key by, e.g. who uses it")
    listing = commands.add_parser("list", help="list an account's keys (never the keys themselves)")
    listing.add_argument("--account", required=True, type=_account)
    revoke = commands.add_parser("revoke", help="revoke one of an account's keys")
    revoke.add_argument("--account", required=True, type=_account)
    revoke.add_argument("key_id", type=_key_id, help="the key's prefix as `list` shows it (sbk_...)")
    return p


async def run(args: argparse.Namespace, settings: GatewaySettings) -> int:
    client = connect(settings.mongo_uri, app_name="switchboard-gateway-keys")
    try:
        db = client[settings.mongo_database]
        await ensure_indexes(db, INDEXES)
        store = MongoApiKeys(db)
        if args.command == "create":
            new = await create_key(store, settings.pepper(), args.account, args.label)
            print(new.key)
            print(
                f"created {new.record.prefix} for account {args.account}; it is shown only this once", file=sys.stderr
            )
            return 0
        if args.command == "list":
            for record in await store.list(args.account):
                state = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
                print(f"{record.prefix}\t{record.created_at:%Y-%m-%d %H:%M}\t{state}\t{record.label}")
            return 0
        revoked = await store.revoke(args.account, args.key_id)
        if revoked is None:
            print(f"account {args.account} has no key sbk_{args.key_id}", file=sys.stderr)
            return 1
        try:
            await announce_revocation(settings, revoked)
        except (KafkaError, OSError) as e:
            print(
                f"revoked {revoked.prefix}, but could not announce it to the gateways ({type(e).__name__}); "
                f"they stop accepting it within {settings.key_cache_seconds:g} s",
                file=sys.stderr,
            )
            return 0
        print(f"revoked {revoked.prefix}; gateways stop accepting it within about a second")
        return 0
    finally:
        await client.close()


async def announce_revocation(settings: GatewaySettings, record: ApiKeyRecord) -> None:
    """Publish `key.revoked` for a revoked key, keyed by its account."""
    event = KeyRevoked(account_id=record.account_id, key_id=record.key_id, revoked_at=record.revoked_at or utcnow())
    await ensure_event_topics(settings, Topic.gateway_events)
    producer = kafka.producer(settings, client_id="switchboard-gateway-keys")
    await producer.start()
    try:
        await KafkaEventPublisher(settings, producer, source="gateway").publish(
            Topic.gateway_events, event, key=record.account_id
        )
    finally:
        await producer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(run(args, GatewaySettings()))
    except MissingSecret as e:
        print(f"gateway.keys: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
