"""`python -m switchboard.probe`: a real produce/consume on Kafka and a real write/read on the database.

scripts/infra runs it after starting the servers, so "ready" means they answer, not just listen.
"""

import asyncio
import sys
import time
from uuid import uuid4

from aiokafka import TopicPartition

from switchboard.messaging import kafka
from switchboard.mongo import connect
from switchboard.settings import SwitchboardSettings


async def probe_kafka(settings: SwitchboardSettings, deadline: float) -> None:
    topic = "switchboard.probe"
    while True:
        try:
            await kafka.ensure_topics(settings, [kafka.TopicSpec(topic, 1)])
            break
        except Exception as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka did not accept a topic: {e}") from e
            await asyncio.sleep(0.5)
    producer = kafka.producer(settings, client_id="probe")
    consumer = kafka.consumer(settings, group_id=None, client_id="probe")
    await producer.start()
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)
        token = uuid4().hex.encode()
        await producer.send_and_wait(topic, token)
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            if any(r.value == token for records in batches.values() for r in records):
                return
        raise RuntimeError("Kafka accepted a record but did not hand it back")
    finally:
        await consumer.stop()
        await producer.stop()


async def probe_mongo(settings: SwitchboardSettings) -> None:
    client = connect(settings.mongo_uri, app_name="probe")
    try:
        await client.admin.command("ping")
        collection = client["switchboard_probe"]["probe"]
        token = uuid4().hex
        await collection.insert_one({"_id": token})
        if await collection.find_one({"_id": token}) is None:
            raise RuntimeError("the database accepted a document but did not return it")
        await collection.delete_one({"_id": token})
    finally:
        await client.close()


async def main() -> int:
    settings = SwitchboardSettings()
    deadline = time.monotonic() + 60
    try:
        await probe_kafka(settings, deadline)
    except Exception as e:
        print(f"probe: Kafka at {settings.kafka_bootstrap}: {e}", file=sys.stderr)
        return 1
    try:
        await probe_mongo(settings)
    except Exception as e:
        print(f"probe: database at {settings.mongo_uri}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
