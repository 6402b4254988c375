"""The shared service skeleton: a service started from it answers commands and reports readiness."""

import httpx
import pytest

from switchboard.contracts import CallContext, Command, CommandType, Topic
from switchboard.contracts.leads import CreateLead, LeadCreated
from switchboard.messaging.requester import KafkaRequester
from switchboard.service import Runtime, Service, ServiceSettings

pytestmark = pytest.mark.integration


def bootstrap(runtime: Runtime):
    async def create_lead(command: Command[CreateLead]) -> LeadCreated:
        await runtime.db["leads"].insert_one({"_id": command.command_id, "account_id": command.account_id})
        return LeadCreated(lead_id=command.command_id, case_id="c1", lead_existed=False, deduplicable=False)

    return {CommandType.create_lead: create_lead}


async def test_service_answers_commands_and_serves_health(settings, isolation, mongo_client) -> None:
    service_settings = ServiceSettings(
        **settings.model_dump(), mongo_database=f"{isolation}_leads", http_port=0
    )
    service = Service("leads", service_settings, topic=Topic.leads_commands, indexes=[], bootstrap=bootstrap)
    await service.start(serve_http=False)
    requester = KafkaRequester(settings)
    await requester.start()
    try:
        await service.wait_ready()
        context = CallContext(account_id="a1", persona_id="p1", call_id="call-1")
        result = await requester.request(CommandType.create_lead, context, CreateLead(name="Ann", intent="x"), timeout=15)
        assert isinstance(result, LeadCreated)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://svc") as http:
            assert (await http.get("/healthz")).json()["status"] == "ok"
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {"consumer": True, "database": True}
    finally:
        await requester.stop()
        await service.stop()
        await mongo_client.drop_database(f"{isolation}_leads")


async def test_service_refuses_to_start_without_a_handler_for_each_of_its_commands(settings, isolation) -> None:
    service_settings = ServiceSettings(**settings.model_dump(), mongo_database=f"{isolation}_p")
    service = Service("persona", service_settings, topic=Topic.persona_commands, indexes=[], bootstrap=bootstrap)
    with pytest.raises(RuntimeError, match="must handle exactly"):
        await service.start(serve_http=False)
    await service.stop()
