"""The FastAPI application: routers, the error envelope, request context and lifespan.

Its state comes from the composition root (``opshub.app.create_app``), which builds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route

from opshub import __version__
from opshub.api.body_limit import BodySizeLimitMiddleware
from opshub.api.errors import register_error_handlers
from opshub.api.middleware import RequestContextMiddleware
from opshub.api.openapi import install_openapi
from opshub.api.routes import (
    actions,
    admin,
    auth,
    budget,
    credentials,
    crews,
    data,
    events,
    health,
    keys,
    mcp_servers,
    memory,
    models,
    panels,
    schedules,
    tasks,
    threads,
    webhooks,
)
from opshub.api.state import AppState
from opshub.config import Settings
from opshub.console.mount import mount_console
from opshub.mcp.server import McpEndpoint
from opshub.observability.tracing import instrument_app
from opshub.process import freeze_startup_objects


def create_api(
    settings: Settings, open_state: Callable[[], AbstractAsyncContextManager[AppState]]
) -> FastAPI:
    """The API over the state ``open_state`` holds open for the app's lifespan."""
    mcp = McpEndpoint()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_state() as state:
            app.state.opshub = state
            freeze_startup_objects()
            async with mcp.running():
                yield

    app = FastAPI(
        title="opshub",
        version=__version__,
        summary="Crews of AI agents for marketing, analytics, e-commerce and operations work.",
        lifespan=lifespan,
        docs_url=None,  # served by mount_console from the package's own Swagger UI files
    )
    register_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    instrument_app(app)
    for router in (
        health.router,
        auth.router,
        keys.router,
        credentials.router,
        budget.router,
        models.router,
        admin.router,
        tasks.router,
        crews.router,
        threads.router,
        schedules.router,
        actions.router,
        webhooks.router,
        memory.router,
        mcp_servers.router,
        panels.router,
        events.router,
        *data.routers,
    ):
        app.include_router(router)
    install_openapi(app)
    # A route, not a mount: a mount answers /mcp with a redirect to /mcp/.
    app.router.routes.append(
        Route(mcp.path, mcp.app, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    mount_console(app)
    return app
