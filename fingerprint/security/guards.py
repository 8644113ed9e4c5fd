"""Route guards: a valid bearer key with the scope the operation needs (401 without, 403 short of scope)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from fingerprint.security.api_keys import AuthBusy, KeyRing, Principal, bearer_token


def verified_key(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller's key if it is valid, else None; never raises for a bad key (the rate limiter's view)."""
    state = connection.scope.setdefault("state", {})
    if "principal" in state:
        return state["principal"]  # type: ignore[no-any-return]
    ring: KeyRing | None = connection.app.state.get("key_ring")
    token = bearer_token(connection.headers.get("authorization", "")) if ring is not None else ""
    try:
        principal = ring.authenticate(token) if ring is not None and token else None
    except AuthBusy:
        return None
    if principal is not None:
        state["principal"] = principal
    return principal


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The authenticated caller, cached on the request; None when authentication is disabled."""
    state = connection.scope.setdefault("state", {})
    if "principal" in state:
        return state["principal"]  # type: ignore[no-any-return]
    ring: KeyRing | None = connection.app.state.get("key_ring")
    if ring is None:
        state["principal"] = None
        return None
    token = bearer_token(connection.headers.get("authorization", ""))
    try:
        principal = ring.authenticate(token) if token else None
    except AuthBusy:
        raise TooManyRequestsException(detail="too many checks of legacy API keys; retry shortly",
                                       headers={"Retry-After": "1"}) from None
    if principal is None:
        raise NotAuthorizedException(detail="a valid API key is required (Authorization: Bearer fpk_...)",
                                     headers={"WWW-Authenticate": 'Bearer realm="fingerprint-api"'})
    state["principal"] = principal
    return principal


def requires(scope: str) -> Guard:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = principal_of(connection)
        if principal is not None and scope not in principal.scopes:
            raise PermissionDeniedException(detail=f"this API key lacks the `{scope}` scope")

    return guard
