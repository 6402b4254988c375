"""Protection of the admin REST APIs (the Portal's back end): one bearer token, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

_bearer = HTTPBearer(auto_error=False, description="The admin token (SWITCHBOARD_ADMIN_TOKEN).")


def require_admin(token: SecretStr | None):
    """A FastAPI dependency: 401 unless the request carries `Authorization: Bearer <token>`.

    With no token configured every admin request is refused: an admin API is never open by default.
    """

    async def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        expected = token.get_secret_value().encode() if token else None
        given = credentials.credentials.encode() if credentials else b""
        if not expected or not hmac.compare_digest(given, expected):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="A valid admin token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return Depends(check)
