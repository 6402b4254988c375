"""No process starts with a placeholder secret, unless told it runs on a developer's own machine."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from gateway.settings import GatewaySettings
from switchboard.service import ServiceSettings


def test_a_placeholder_admin_token_is_refused_outside_local_mode(monkeypatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_ADMIN_TOKEN", "change-me-admin-token")
    with pytest.raises(ValidationError, match="placeholder change-me"):
        ServiceSettings(mongo_database="x")
    monkeypatch.setenv("SWITCHBOARD_LOCAL_MODE", "true")
    assert ServiceSettings(mongo_database="x").admin_token == SecretStr("change-me-admin-token")


def test_a_placeholder_key_pepper_is_refused() -> None:
    with pytest.raises(ValidationError, match="key_pepper is still the placeholder"):
        GatewaySettings(key_pepper="change-me-key-pepper")
    assert GatewaySettings(key_pepper="a-real-pepper-0123456789").pepper()
