"""Route guards: a valid bearer key with the scope the operation needs (401 without, 403 short of scope)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from fingerprint.security.api_keys import AuthBusy, KeyRing, Principal, bearer_token

_CHECKED = "presented_key"  # request state: the outcome of checking the presented key, valid or not


def _check(connection: ASGIConnection[Any, Any, Any, Any], ring: KeyRing) -> Principal | None:
    """The presented key's principal, or None; checked once per request (the rate limiter and the guard
    both ask, and a legacy key's check spends the shared scrypt budget). Raises AuthBusy."""
    state = connection.scope.setdefault("state", {})
    if _CHECKED not in state:
        token = bearer_token(connection.headers.get("authorization", ""))
        state[_CHECKED] = ring.authenticate(token) if token else None
    return state[_CHECKED]  # type: ignore[no-any-return]


def verified_key(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller's key if it is valid, else None; never raises for a bad key (the rate limiter's view)."""
    ring: KeyRing | None = connection.app.state.get("key_ring")
    if ring is None:
        return None
    try:
        return _check(connection, ring)
    except AuthBusy:
        return None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The authenticated caller; None when authentication is disabled."""
    ring: KeyRing | None = connection.app.state.get("key_ring")
    if ring is None:
        return None
    try:
        principal = _check(connection, ring)
    except AuthBusy:
        raise TooManyRequestsException(detail="too many checks of legacy API keys; retry shortly",
                                       headers={"Retry-After": "1"}) from None
    if principal is None:
        raise NotAuthorizedException(detail="a valid API key is required (Authorization: Bearer fpk_...)",
                                     headers={"WWW-Authenticate": 'Bearer realm="fingerprint-api"'})
    return principal


def may_see(connection: ASGIConnection[Any, Any, Any, Any], scope: str) -> bool:
    """Whether the caller holds `scope` (everyone does with authentication disabled); never raises: for
    open routes that tell a key holder more than an anonymous caller."""
    ring: KeyRing | None = connection.app.state.get("key_ring")
    if ring is None:
        return True
    principal = verified_key(connection)
    return principal is not None and scope in principal.scopes


BEARER_SCHEME = "bearerAuth"
# the OpenAPI security requirement of every route a key opens (the scheme: app.py's components)
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]


def requires(scope: str) -> Guard:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = principal_of(connection)
        if principal is not None and scope not in principal.scopes:
            raise PermissionDeniedException(detail=f"this API key lacks the `{scope}` scope")

    return guard
