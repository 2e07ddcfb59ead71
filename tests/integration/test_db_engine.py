"""How opshub connects (``opshub.db.engine`` beyond tenant binding): the URLs it derives, and
what every pooled connection is set up with: JSON columns as Python values, timestamps in UTC,
and a name operators can find in ``pg_stat_activity``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import make_url

from opshub.config import Settings
from opshub.db import locks
from opshub.db.engine import DatabaseUrls, create_engine, create_pool, dsn, resolve_database_urls


def test_the_app_url_is_the_owners_with_the_app_role_and_both_use_asyncpg(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://owner:s3cret@db.internal:5433/opshub",
        database_app_role="opshub_app",
        data_dir=tmp_path,  # where a broken resolver would start a server: not the user's
    )

    urls = resolve_database_urls(settings)

    owner, app = make_url(urls.owner), make_url(urls.app)
    assert urls.owner == "postgresql+asyncpg://owner:s3cret@db.internal:5433/opshub"
    assert (app.drivername, app.username, app.host, app.port, app.database) == (
        "postgresql+asyncpg",
        "opshub_app",
        "db.internal",
        5433,
        "opshub",
    )
    assert owner.password == app.password == "s3cret"


def test_a_given_app_url_is_used_as_it_is_but_for_the_driver(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://owner:pw@db.internal/opshub",
        database_app_url="postgresql://api:other@replica.internal/opshub",
        data_dir=tmp_path,
    )

    urls = resolve_database_urls(settings)

    assert urls.app == "postgresql+asyncpg://api:other@replica.internal/opshub"


def test_asyncpg_gets_the_url_with_its_password() -> None:
    url = "postgresql+asyncpg://opshub_app:s3cret@db.internal:5433/opshub"

    assert dsn(url) == "postgresql://opshub_app:s3cret@db.internal:5433/opshub"


async def test_an_engine_keeps_the_pool_size_it_was_given(urls: DatabaseUrls) -> None:
    engine = create_engine(urls.owner, pool_size=3)
    try:
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_pooled_connections_read_and_write_json_as_values_in_utc_named_opshub(
    urls: DatabaseUrls,
) -> None:
    # A pool of its own: the session's was made by whichever test came first.
    pool = await create_pool(urls.app, size=2)
    async with pool.acquire() as conn:
        echoed = await conn.fetchval("SELECT $1::jsonb", {"plan": "pro", "seats": [1, 2]})
        stored_text = await conn.fetchval("SELECT ($1::jsonb)::text", {"a": 1})
        rendered = await conn.fetchval(
            "SELECT to_json(timestamptz '2026-12-07 14:00:00+02:00')::text"
        )
        name = await conn.fetchval("SELECT current_setting('application_name')")
    await pool.close()

    assert echoed == {"plan": "pro", "seats": [1, 2]}
    assert stored_text == '{"a": 1}'
    assert rendered == '"2026-12-07T12:00:00+00:00"'
    assert name == "opshub"


async def test_a_transactions_only_pool_resets_what_a_connection_left_only_when_it_listened(
    urls: DatabaseUrls,
) -> None:
    # One connection, so each acquire gets the one released before.
    pool = await create_pool(urls.app, size=1, transactions_only=True)
    try:
        async with pool.acquire() as conn:
            await conn.add_listener("opshub_test_reset", lambda *_args: None)
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', 'in-a-transaction', true)")
        async with pool.acquire() as conn:
            listening = await conn.fetchval("SELECT count(*) FROM pg_listening_channels()")
            leftover = await conn.fetchval("SELECT current_setting('app.tenant_id', true)")
            # Not this pool's users' way; here it shows which releases send the reset.
            await conn.execute("SELECT set_config('application_name', 'left-behind', false)")
        async with pool.acquire() as conn:
            name = await conn.fetchval("SELECT current_setting('application_name')")
    finally:
        await pool.close()

    assert listening == 0  # the listener went with the release
    assert leftover in (None, "")  # a transaction's setting ends with it, reset or not
    assert name == "left-behind"  # a connection that did not listen goes back as it was


async def test_a_session_lock_its_holder_failed_to_release_goes_with_the_connections_release(
    urls: DatabaseUrls,
) -> None:
    # The owner pool's jobs (outbox relay, credential sweep, index builds) take session locks on
    # a pool that otherwise skips the reset; one cancelled before its unlock must not hand the
    # lock to whoever gets the connection next, which would then hold the job for good.
    pool = await create_pool(urls.owner, size=1, transactions_only=True)
    key = 7_400_017
    try:
        async with pool.acquire() as conn:
            assert await locks.try_lock(conn, key=key)
        async with pool.acquire() as conn:
            held = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 "
                "AND pid = pg_backend_pid()",
                key,
            )
            # Not this pool's users' way; here it shows which releases send the reset.
            await conn.execute("SELECT set_config('application_name', 'left-behind', false)")
        async with pool.acquire() as conn:
            name = await conn.fetchval("SELECT current_setting('application_name')")
    finally:
        await pool.close()

    assert held == 0
    assert name == "left-behind"  # a connection that took no lock goes back as it was
