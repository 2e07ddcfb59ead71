"""The ``opshub`` command: serve, api, worker, scheduler, migrate, tenants, keys, credentials,
memory; ``run``, ``tasks`` and ``actions`` talk to a hub through its API (``opshub.cli_hub``)."""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
import uvicorn
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError

from opshub import cli_hub, cli_processes
from opshub.auth.models import Role
from opshub.config import get_settings
from opshub.credentials.envelope import parse_key
from opshub.credentials.monitor import sweep_once
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import DatabaseSecretStore, open_secret_store
from opshub.db.engine import (
    DatabaseUrls,
    create_pool,
    dsn,
    resolve_database_urls,
    set_tenant,
    tenant_transaction,
    transaction,
)
from opshub.db.migrate import (
    DatabaseMisconfiguredError,
    SchemaNotReadyError,
    ensure_schema,
    migrate,
)
from opshub.db.sql import Connection
from opshub.errors import DomainError
from opshub.logging import configure_logging
from opshub.memory import bulk as memory_bulk
from opshub.memory import service as memory_service
from opshub.memory.embedders import MODELS as EMBEDDING_MODELS
from opshub.memory.embedders import Embedders
from opshub.memory.import_file import read_import_file
from opshub.memory.models import Scope
from opshub.memory.reembed import reembed_tenant
from opshub.memory.schemas import MemoriesImported, MemoryHit
from opshub.memory.service import MemoryFilter
from opshub.observability.metrics import serve_metrics
from opshub.observability.tracing import configure_tracing
from opshub.runtime.supervisor import ProcessGroup, default_processes
from opshub.tenants import service as tenants_service

app = typer.Typer(
    help="opshub: crews of AI agents for your tenants' operations.", no_args_is_help=True
)
tenants_app = typer.Typer(help="Platform administration of tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="Tenant API keys.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
credentials_app = typer.Typer(help="Tenants' stored credentials.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")
memory_app = typer.Typer(help="Tenants' long-term memory.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
app.command("run")(cli_hub.run)
app.add_typer(cli_hub.tasks_app, name="tasks")
app.add_typer(cli_hub.actions_app, name="actions")
credentials_app.command("put")(cli_hub.credentials_put)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"opshub {package_version('opshub')}")
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version"),
    ] = False,
) -> None:
    """opshub: crews of AI agents for your tenants' operations."""


T = TypeVar("T")
_email = TypeAdapter(EmailStr)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def _one_line_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Expected failures end the command with one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except (DomainError, DatabaseMisconfiguredError, SchemaNotReadyError) as exc:
            raise _fail(str(exc)) from None
        except DBAPIError as exc:
            raise _fail(f"database error: {str(exc.orig).splitlines()[0]}") from None
        except asyncpg.PostgresError as exc:
            raise _fail(f"database error: {str(exc).splitlines()[0]}") from None
        except OSError as exc:
            raise _fail(f"can't reach a service: {exc}") from None

    return wrapper


def _urls(*, bring_up: bool = True) -> DatabaseUrls:
    """The hub's database, the same one for every command: which data directory it uses is said
    on stderr, and its schema is brought up to date (embedded) or checked (any other)."""
    settings = get_settings()
    if settings.embedded:
        typer.echo(f"opshub data: {settings.data_dir} ({settings.data_dir_origin()})", err=True)
    urls = resolve_database_urls(settings)
    if bring_up:
        _run(ensure_schema(urls, may_migrate=settings.embedded))
    return urls


def _run_owner(work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` in one owner transaction (platform administration bypasses RLS)."""

    urls = _urls()

    async def run() -> T:
        conn = await asyncpg.connect(dsn(urls.owner))
        try:
            async with conn.transaction():
                return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@app.command("migrate")
@_one_line_errors
def migrate_database() -> None:
    """Apply database migrations and provision the application role."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    _run(migrate(_urls(bring_up=False)))
    typer.echo("database is up to date")


def _exit_normally(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


ProcessesOption = Annotated[
    int | None, typer.Option("--processes", min=1, help="Processes (default: one per core)")
]


def _serve(
    *,
    apply_migrations: bool,
    host: str | None,
    port: int | None,
    api_processes: int,
    worker_processes: int = 0,
) -> None:
    """The API in ``api_processes``, and beside it ``worker_processes`` running a worker and a
    scheduler each (``opshub serve``). One API process with at most one worker is one process in
    all: the hub's API, worker and scheduler share it."""
    from opshub.app import create_app

    # uvicorn shuts down gracefully on SIGTERM and then re-raises it; exiting normally instead
    # lets atexit stop the embedded PostgreSQL with the hub.
    signal.signal(signal.SIGTERM, _exit_normally)
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("api")
    urls = _urls(bring_up=False)
    _run(migrate(urls) if apply_migrations else ensure_schema(urls, may_migrate=settings.embedded))
    if api_processes > 1 or worker_processes > 1:
        cli_processes.serve_supervised(
            settings=settings,
            urls=urls,
            host=host or settings.host,
            port=port or settings.port,
            api_processes=api_processes,
            worker_processes=worker_processes,
        )
        return
    uvicorn.run(
        create_app(settings, urls, run_workers=worker_processes == 1),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
    )


def _processes(given: int | None) -> int:
    """The option's count, else ``OPSHUB_PROCESSES``, else one per core."""
    return given or get_settings().processes or default_processes()


@app.command()
@_one_line_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (OPSHUB_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (OPSHUB_PORT)")] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            help="Worker processes, each with a scheduler (default: one per core); 1 runs the "
            "whole hub in one process",
        ),
    ] = None,
    api_processes: Annotated[
        int | None, typer.Option("--api-processes", min=1, help="API processes (default: 1)")
    ] = None,
) -> None:
    """Migrate, then run the hub: the API, and worker processes (with the scheduler) beside it."""
    _serve(
        apply_migrations=True,
        host=host,
        port=port,
        api_processes=api_processes or 1,
        worker_processes=_processes(processes),
    )


@app.command()
def openapi() -> None:
    """Print the API's OpenAPI document (JSON), e.g. to generate a client from it."""
    from opshub.app import create_app

    typer.echo(json.dumps(create_app().openapi(), indent=2, ensure_ascii=False))


@app.command()
@_one_line_errors
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (OPSHUB_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (OPSHUB_PORT)")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="API processes (default: one per core)")
    ] = None,
) -> None:
    """Run the API only (migrations are applied by `opshub migrate`)."""
    processes = _processes(workers)
    _serve(apply_migrations=False, host=host, port=port, api_processes=processes)


@app.command()
@_one_line_errors
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Crews run at once (OPSHUB_WORKER_CONCURRENCY)")
    ] = None,
    processes: ProcessesOption = None,
) -> None:
    """Claim queued tasks and run their crews; SIGTERM finishes or hands back running ones."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    urls = _urls()
    processes = _processes(processes)
    if processes > 1:
        target = functools.partial(
            cli_processes.run_worker_process, concurrency=concurrency, urls=urls
        )
        cli_processes.supervise(
            ProcessGroup("worker", target, processes), settings=settings, urls=urls
        )
    else:
        cli_processes.run_worker_process(0, concurrency=concurrency, urls=urls)


@app.command()
@_one_line_errors
def scheduler() -> None:
    """Fire due schedules as tasks (any number of schedulers may run; each slot fires once)."""
    from opshub.app import run_scheduler

    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("scheduler")
    serve_metrics(settings.metrics_port)
    _run(run_scheduler(settings, _urls()))


@tenants_app.command("create")
@_one_line_errors
def tenants_create(
    name: Annotated[str, typer.Argument(help="The client business's name")],
    owner_email: Annotated[str, typer.Option("--owner-email", help="E-mail of the first owner")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, help="The owner's password (≥ 8 characters)"),
    ],
    plan: Annotated[str, typer.Option(help="Plan name")] = "standard",
) -> None:
    """Create a tenant with its owner user; print its first API key (shown once)."""
    if not name.strip():
        raise _fail("the tenant name is empty")
    try:
        _email.validate_python(owner_email)
    except ValidationError:
        raise _fail(f"{owner_email!r} is not an e-mail address") from None
    if len(password) < 8:
        raise _fail("the password needs at least 8 characters")
    tenant, key = _run_owner(
        lambda conn: tenants_service.create_tenant(
            conn, name=name.strip(), owner_email=owner_email, password=password, plan=plan
        )
    )
    typer.echo(f"tenant {tenant.id} ({tenant.name}) created")
    typer.echo(f"API key (shown once): {key}")


@tenants_app.command("list")
@_one_line_errors
def tenants_list() -> None:
    """List tenants."""
    for row in _run_owner(tenants_service.list_tenants):
        typer.echo(f"{row.id}  {row.plan:<10}  {row.created_at:%Y-%m-%d}  {row.name}")


def _parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _fail(f"{value!r} is not a {what} id") from None


@keys_app.command("create")
@_one_line_errors
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    role: Annotated[Role, typer.Option(help="Role of the key")] = Role.member,
) -> None:
    """Create an API key for a tenant; print it (shown once)."""
    tenant_id = _parse_uuid(tenant, "tenant")

    async def work(conn: Connection) -> str:
        await tenants_service.get_tenant(conn, tenant_id=tenant_id)
        row, key = await tenants_service.create_api_key(
            conn, tenant_id=tenant_id, name=name, role=role
        )
        return f"key {row.id} ({row.role}) created\nAPI key (shown once): {key}"

    typer.echo(_run_owner(work))


@keys_app.command("revoke")
@_one_line_errors
def keys_revoke(key_id: Annotated[str, typer.Argument(help="API key id")]) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    parsed = _parse_uuid(key_id, "key")
    row = _run_owner(
        lambda conn: tenants_service.revoke_api_key(conn, key_id=parsed, revoker=Role.owner)
    )
    typer.echo(f"key {row.id} revoked")


@keys_app.command("rotate-master")
@_one_line_errors
def keys_rotate_master(
    new_key: Annotated[
        str | None,
        typer.Option(
            help="The new master key (hex or base64) when keys come from OPSHUB_MASTER_KEY"
        ),
    ] = None,
) -> None:
    """Re-wrap every tenant's data key with a new master key (embedded credential backend)."""
    settings = get_settings()
    store = open_secret_store(settings)
    if not isinstance(store, DatabaseSecretStore):
        raise _fail("secrets are in Vault (OPSHUB_VAULT_ADDR): rotate them there")
    if settings.master_key is not None and new_key is None:
        raise _fail("keys come from OPSHUB_MASTER_KEY: pass --new-key, then put it first there")
    key = parse_key(new_key) if new_key else None
    count = _run_owner(lambda conn: store.rotate_master_key(conn, key))
    typer.echo(
        f"re-wrapped {count} tenant data keys; current master key {store.keyring.current_id}"
    )


@credentials_app.command("sweep")
@_one_line_errors
def credentials_sweep() -> None:
    """Check every stored credential now (the API also does this on a schedule)."""
    settings = get_settings()
    urls = _urls()

    async def sweep() -> str:
        app_pool = await create_pool(urls.app, size=settings.credential_check_concurrency)
        owner_pool = await create_pool(urls.owner, size=2)
        try:
            counts = await sweep_once(
                app_pool=app_pool,
                owner_pool=owner_pool,
                store=open_secret_store(settings),
                settings=settings,
            )
        finally:
            await app_pool.close()
            await owner_pool.close()
        if counts is None:
            return "another process is sweeping; nothing done"
        return ", ".join(f"{status.value} {n}" for status, n in counts.items())

    typer.echo(_run(sweep()))


async def _with_memory(
    urls: DatabaseUrls,
    tenant_id: uuid.UUID,
    work: Callable[[asyncpg.Pool, Embedders], Awaitable[T]],
) -> T:
    """Pools, the tenant's embedders and its existence checked, for one memory command."""
    settings = get_settings()
    app_pool = await create_pool(urls.app, size=2)
    try:
        async with transaction(app_pool) as conn:
            await set_tenant(conn, tenant_id)
            await tenants_service.get_tenant(conn, tenant_id=tenant_id)
        resolver = CredentialResolver(
            pool=app_pool, store=open_secret_store(settings), settings=settings
        )
        return await work(app_pool, Embedders(resolver=resolver, settings=settings))
    finally:
        await app_pool.close()


TenantOption = Annotated[str, typer.Option(help="Tenant id")]
ScopeOption = Annotated[
    str | None, typer.Option(help="tenant, crew:<name>, agent:<role> or thread:<id>")
]


@memory_app.command("search")
@_one_line_errors
def memory_search(
    query: Annotated[str, typer.Argument(help="What to recall, in words")],
    tenant: TenantOption,
    scope: ScopeOption = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Search a tenant's memories the way its crews recall them."""
    tenant_id = _parse_uuid(tenant, "tenant")
    where = MemoryFilter(scopes=[Scope.parse(scope)] if scope else None)

    async def work(pool: asyncpg.Pool, embedders: Embedders) -> list[MemoryHit]:
        async with tenant_transaction(pool, tenant_id) as conn:
            return await memory_service.search(
                conn,
                tenant_id=tenant_id,
                embedders=embedders,
                query=query,
                limit=limit,
                where=where,
                touch=False,
            )

    for hit in _run(_with_memory(_urls(), tenant_id, work)):
        similarity = f"{hit.similarity:.2f}" if hit.similarity is not None else "text"
        typer.echo(
            f"{hit.id}  {similarity:>5}  {hit.scope:<20}  {hit.kind.value:<10}  {hit.content}"
        )


@memory_app.command("forget")
@_one_line_errors
def memory_forget(
    tenant: TenantOption,
    scope: ScopeOption = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Erase every memory of the tenant, history included")
    ] = False,
) -> None:
    """Forget one scope of a tenant's memory, or all of it (an erasure request)."""
    tenant_id = _parse_uuid(tenant, "tenant")
    if (scope is None) == (not everything):
        raise _fail("give either --scope or --all")

    async def work(pool: asyncpg.Pool, _embedders: Embedders) -> int:
        async with tenant_transaction(pool, tenant_id) as conn:
            if everything:
                return await memory_service.erase_tenant(conn, tenant_id=tenant_id)
            return await memory_service.forget_scope(
                conn, tenant_id=tenant_id, scope=Scope.parse(scope or "")
            )

    typer.echo(f"{_run(_with_memory(_urls(), tenant_id, work))} memories deleted")


@memory_app.command("import")
@_one_line_errors
def memory_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="JSON (as POST /v1/memories/import takes) or .csv"
        ),
    ],
    tenant: TenantOption,
) -> None:
    """Import memories into a tenant, all or none; rows without a vector are embedded first."""
    tenant_id = _parse_uuid(tenant, "tenant")
    items = read_import_file(file.read_bytes(), csv_format=file.suffix.lower() == ".csv")

    async def work(pool: asyncpg.Pool, embedders: Embedders) -> MemoriesImported:
        async with tenant_transaction(pool, tenant_id) as conn:
            return await memory_bulk.import_memories(
                conn, tenant_id=tenant_id, embedders=embedders, items=items
            )

    done = _run(_with_memory(_urls(), tenant_id, work))
    typer.echo(f"{done.inserted} memories imported, {done.skipped} already there")


@memory_app.command("reembed")
@_one_line_errors
def memory_reembed(
    tenant: TenantOption,
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(EMBEDDING_MODELS)}")],
) -> None:
    """Move a tenant's memories to another embedding model; the hub keeps serving meanwhile."""
    tenant_id = _parse_uuid(tenant, "tenant")

    async def work(pool: asyncpg.Pool, embedders: Embedders) -> int:
        return await reembed_tenant(
            pool,
            tenant_id=tenant_id,
            embedders=embedders,
            model=model,
            on_batch=lambda moved: typer.echo(f"{moved} re-embedded", err=True),
        )

    moved = _run(_with_memory(_urls(), tenant_id, work))
    typer.echo(f"tenant {tenant_id} now recalls with {model} ({moved} memories moved)")


def main() -> None:
    app()
