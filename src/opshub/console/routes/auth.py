"""Sign-in and sign-out: a server-side session in an HttpOnly, SameSite=Strict cookie."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opshub.api.deps import StateDep
from opshub.auth import service as auth_service
from opshub.auth import sessions
from opshub.auth.errors import AuthenticationError
from opshub.console.deps import CSRF_FIELD, TZ_COOKIE, FormDep, viewer_zone
from opshub.console.render import page
from opshub.db.engine import transaction
from opshub.errors import RateLimitedError

router = APIRouter(prefix="/console")
# Before sign-in there is no session to hold a CSRF token: the form and a cookie carry the same
# random value (double submit), so another site cannot sign a browser in to its own account.
LOGIN_CSRF_COOKIE = "opshub_login_csrf"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(
    request: Request, *, error: str | None = None, email: str = "", status_code: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        error=error,
        email=email,
        login_csrf=token,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/console/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    state: StateDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
    tz: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(
            request,
            error="The sign-in form expired; please try again.",
            email=email,
            status_code=403,
        )
    try:
        user = await auth_service.verify_login(
            state.login_pool,
            email=email,
            password=password,
            limiter=state.limiter,
            password_checks=state.password_checks,
            address=request.client.host if request.client else None,
        )
        async with transaction(state.app_pool) as conn:
            token = await sessions.start(
                conn, user=user, ttl_seconds=state.settings.console_session_ttl_seconds
            )
    except RateLimitedError as exc:
        return _login_page(
            request,
            error=f"Too many sign-in attempts; try again in {exc.retry_after} s.",
            email=email,
            status_code=429,
        )
    except AuthenticationError:
        return _login_page(request, error="Wrong e-mail or password.", email=email, status_code=401)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=state.settings.console_session_ttl_seconds,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    # The form's hidden field holds the browser's zone (console.js): the first page after
    # signing in already counts "today" in it. A zone that isn't one is dropped: UTC.
    if tz and viewer_zone(tz) == tz:
        # Written as console.js writes it (unquoted), so that the script finds it the same.
        secure = "; Secure" if _secure(request) else ""
        response.headers.append(
            "set-cookie", f"{TZ_COOKIE}={tz}; Path=/console; SameSite=Lax{secure}"
        )
    return response


@router.post("/logout", include_in_schema=False)
async def logout(ctx: FormDep) -> Response:
    await sessions.end(ctx.conn, session_id=ctx.session.id)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response
