"""Puts the console, its static files and the offline API docs on the API's application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from opshub.console.errors import CsrfRefused, SignInRequired
from opshub.console.routes import approvals, auth, chat, home, runs, settings, usage

STATIC = Path(__file__).with_name("static")


async def _sign_in(request: Request, _exc: Exception) -> Response:
    if request.headers.get("HX-Request"):
        # htmx follows this header with a full page load rather than swapping a redirect in.
        return Response(status_code=401, headers={"HX-Redirect": "/console/login"})
    return RedirectResponse("/console/login", status_code=303)


async def _csrf_refused(_request: Request, _exc: Exception) -> Response:
    return PlainTextResponse(
        "This form was not sent from the console page it belongs to; reload and try again.",
        status_code=403,
    )


def _docs(app: FastAPI) -> None:
    """Swagger UI from the package's own copy: /docs works with no network beyond the hub."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/console/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/console/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/console/static/favicon.svg",
        )


def mount_console(app: FastAPI) -> None:
    """Call with ``docs_url=None`` on the app: this serves /docs from local files."""
    for module in (auth, home, runs, approvals, chat, usage, settings):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    _docs(app)
