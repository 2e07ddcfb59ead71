"""What ``opshub serve``, ``api`` and ``worker`` run in each process under the supervisor
(``opshub.runtime.supervisor``), and how they hand it the database and the listening socket."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket

import uvicorn

from opshub.config import Settings, get_settings
from opshub.db.engine import DatabaseUrls, dsn, resolve_database_urls
from opshub.logging import configure_logging
from opshub.observability.metrics import serve_metrics
from opshub.observability.tracing import configure_tracing
from opshub.runtime.supervisor import ProcessGroup, Supervisor


def child_env(settings: Settings, urls: DatabaseUrls, processes: int) -> dict[str, str]:
    """The children use the supervisor's data directory and database (with the embedded
    default, the server this process started and alone stops), and know how many they are."""
    env = {"OPSHUB_DATA_DIR": str(settings.data_dir), "OPSHUB_PROCESSES": str(processes)}
    if settings.embedded:
        env["OPSHUB_DATABASE_URL"] = dsn(urls.owner)
    return env


def supervise(*groups: ProcessGroup, settings: Settings, urls: DatabaseUrls) -> None:
    # Each worker process sizes its crews by how many worker processes share the machine.
    workers = sum(group.processes for group in groups if group.role == "worker")
    Supervisor(
        groups=groups,
        # The children's own drain (the worker's grace for its runs), then some room.
        grace_seconds=settings.worker_shutdown_grace_seconds + 15,
        env=child_env(settings, urls, workers or 1),
    ).run()


def serve_supervised(
    *,
    settings: Settings,
    urls: DatabaseUrls,
    host: str,
    port: int,
    api_processes: int,
    worker_processes: int = 0,
) -> None:
    """``api_processes`` children accepting on one socket bound here, and beside them
    ``worker_processes`` children each running a worker and a scheduler (``opshub serve``): a
    request, or an event on its way to a watcher, never waits for the CPU a crew holds."""
    config = uvicorn.Config(app="unused", host=host, port=port)
    listening = config.bind_socket()
    groups = [
        ProcessGroup("api", functools.partial(_serve_process, listening=listening), api_processes)
    ]
    if worker_processes:
        target = functools.partial(run_worker_process, concurrency=None, urls=urls, schedule=True)
        groups.append(ProcessGroup("worker", target, worker_processes))
    supervise(*groups, settings=settings, urls=urls)


def _serve_process(_index: int, *, listening: socket.socket) -> None:
    from opshub.app import create_app

    # uvicorn stops gracefully on SIGTERM, then re-raises it: exit 0 instead, as a clean stop.
    signal.signal(signal.SIGTERM, _exit_normally)
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("api")
    app = create_app(settings, resolve_database_urls(settings))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    server.run(sockets=[listening])


def run_worker_process(
    index: int, *, concurrency: int | None, urls: DatabaseUrls, schedule: bool = False
) -> None:
    """One worker process (with ``schedule``, its scheduler too); under the supervisor, the
    ``index``-th of its group (its metrics port offset)."""
    from opshub.app import run_worker

    settings = get_settings()
    os.nice(settings.worker_nice)
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("worker")
    serve_metrics(None if settings.metrics_port is None else settings.metrics_port + index)
    asyncio.run(run_worker(settings, urls, concurrency=concurrency, schedule=schedule))


def _exit_normally(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
