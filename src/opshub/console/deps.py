"""The console's dependencies: the signed-in session's tenant transaction and CSRF checking."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Request

from opshub.api.deps import StateDep, TenantContext
from opshub.auth import sessions
from opshub.auth.errors import AuthenticationError, PermissionDeniedError
from opshub.auth.models import Principal, Role
from opshub.auth.sessions import ConsoleSession
from opshub.console.errors import CsrfRefused, SignInRequired
from opshub.db.engine import transaction

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# IANA names are plain cookie text: letters, digits, "/", "_", "-", "+".
ZONE_NAME = re.compile(r"[A-Za-z0-9/_+-]{1,64}")
TZ_COOKIE = "opshub_tz"  # the browser's IANA zone (sign-in, then console.js): "today" is theirs


@dataclass(frozen=True, slots=True)
class Page(TenantContext):
    """A page's open transaction (bound to the session's tenant) and who is looking."""

    session: ConsoleSession
    tenant_name: str
    tz: str = "UTC"

    @property
    def can_decide(self) -> bool:
        """Approve or reject actions, change settings: as in the API, owners and admins."""
        return self.principal.role.at_least(Role.admin)

    @property
    def can_submit(self) -> bool:
        return self.principal.role.at_least(Role.member)

    def require_decide(self) -> None:
        if not self.can_decide:
            raise PermissionDeniedError("this needs the admin role or higher")

    def require_submit(self) -> None:
        if not self.can_submit:
            raise PermissionDeniedError("this needs the member role or higher")


async def console_page(request: Request, state: StateDep) -> AsyncIterator[Page]:
    token = request.cookies.get(sessions.COOKIE)
    async with transaction(state.app_pool) as conn:
        try:
            session = await sessions.resolve(conn, token=token)
        except AuthenticationError as exc:
            raise SignInRequired from exc
        yield Page(
            conn=conn,
            principal=session.principal,
            session=session,
            tenant_name=session.tenant_name,
            tz=viewer_zone(request.cookies.get(TZ_COOKIE)),
        )


def viewer_zone(name: str | None) -> str:
    """The browser's zone when it is a real one; UTC when the browser did not say, or for junk."""
    if not name or not ZONE_NAME.fullmatch(name):
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


async def checked_form(
    request: Request, page: Annotated[Page, Depends(console_page, scope="function")]
) -> Page:
    """A change: the session's CSRF token must come with it, as a form field or (htmx) header."""
    form = await request.form()
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not page.session.csrf_matches(given if isinstance(given, str) else None):
        raise CsrfRefused
    return page


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A checked change that must not hold a database connection (it awaits another host)."""

    principal: Principal

    def require_decide(self) -> None:
        if not self.principal.role.at_least(Role.admin):
            raise PermissionDeniedError("this needs the admin role or higher")


async def signed_in_form(request: Request, state: StateDep) -> SignedIn:
    """As ``checked_form``, with the session read in a transaction of its own, ended at once."""
    async with transaction(state.app_pool) as conn:
        try:
            session = await sessions.resolve(conn, token=request.cookies.get(sessions.COOKIE))
        except AuthenticationError as exc:
            raise SignInRequired from exc
    form = await request.form()
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not session.csrf_matches(given if isinstance(given, str) else None):
        raise CsrfRefused
    return SignedIn(principal=session.principal)


PageDep = Annotated[Page, Depends(console_page, scope="function")]
FormDep = Annotated[Page, Depends(checked_form, scope="function")]
SignedInDep = Annotated[SignedIn, Depends(signed_in_form)]
