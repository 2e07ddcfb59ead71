"""What ``opshub serve``, ``api`` and ``worker`` run in each process under the supervisor
(``opshub.runtime.supervisor``), and how they hand it the database and the listening socket."""

from __future__ import annotations

import functools
import signal
import socket
from collections.abc import Callable

import uvicorn

from opshub.config import Settings, get_settings
from opshub.db.engine import DatabaseUrls, dsn, resolve_database_urls
from opshub.logging import configure_logging
from opshub.observability.tracing import configure_tracing
from opshub.runtime.supervisor import Supervisor


def child_env(settings: Settings, urls: DatabaseUrls, processes: int) -> dict[str, str]:
    """The children use the supervisor's data directory and database (with the embedded
    default, the server this process started and alone stops), and know how many they are."""
    env = {"OPSHUB_DATA_DIR": str(settings.data_dir), "OPSHUB_PROCESSES": str(processes)}
    if settings.embedded:
        env["OPSHUB_DATABASE_URL"] = dsn(urls.owner)
    return env


def supervise(
    target: Callable[[int], None],
    *,
    role: str,
    processes: int,
    settings: Settings,
    urls: DatabaseUrls,
) -> None:
    Supervisor(
        target=target,
        processes=processes,
        name=role,
        # The children's own drain (the worker's grace for its runs), then some room.
        grace_seconds=settings.worker_shutdown_grace_seconds + 15,
        env=child_env(settings, urls, processes),
    ).run()


def serve_supervised(
    *,
    settings: Settings,
    urls: DatabaseUrls,
    host: str,
    port: int,
    run_workers: bool,
    processes: int,
) -> None:
    """The API (and with ``run_workers`` a worker and scheduler) in each of ``processes``
    children, all accepting on one socket bound here."""
    config = uvicorn.Config(app="unused", host=host, port=port)
    listening = config.bind_socket()
    target = functools.partial(_serve_process, listening=listening, run_workers=run_workers)
    supervise(
        target,
        role="serve" if run_workers else "api",
        processes=processes,
        settings=settings,
        urls=urls,
    )


def _serve_process(_index: int, *, listening: socket.socket, run_workers: bool) -> None:
    from opshub.app import create_app

    # uvicorn stops gracefully on SIGTERM, then re-raises it: exit 0 instead, as a clean stop.
    signal.signal(signal.SIGTERM, _exit_normally)
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("api")
    app = create_app(settings, resolve_database_urls(settings), run_workers=run_workers)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    server.run(sockets=[listening])


def _exit_normally(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
