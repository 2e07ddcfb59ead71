"""Throw-away tenants for the benchmarks: each with an owner and an owner API key, new on every
run (the e-mails are random), made in one transaction as the owner role."""

from __future__ import annotations

import uuid

import asyncpg


async def seed_tenants(owner_url: str, count: int, prefix: str) -> list[str]:
    """``count`` tenants named ``{prefix}-{n}``; their owner API keys, in order."""
    from opshub.tenants import service as tenants_service

    conn = await asyncpg.connect(owner_url)
    keys = []
    try:
        async with conn.transaction():
            for n in range(count):
                _, key = await tenants_service.create_tenant(
                    conn,
                    name=f"{prefix}-{n}",
                    owner_email=f"{prefix}-{uuid.uuid4().hex[:8]}@example.com",
                    password="bench-password",  # noqa: S106 - a throw-away tenant
                )
                keys.append(key)
    finally:
        await conn.close()
    return keys
