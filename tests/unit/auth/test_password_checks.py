"""Password checks run on a bounded pool of their own: a login flood queues, it never takes
every core (or the default thread pool other work shares)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from opshub.auth import crypto
from opshub.auth.crypto import PasswordChecks


async def test_no_more_password_checks_run_at_once_than_the_pool_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = crypto.hash_password("correct horse battery")
    lock = threading.Lock()
    running = most = 0
    real_verify = crypto.verify_password

    def counted(password_hash: str | None, password: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return real_verify(password_hash, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(crypto, "verify_password", counted)
    checks = PasswordChecks(concurrency=2)
    try:
        results = await asyncio.gather(
            *(
                checks.verify(stored, "wrong" if n % 2 else "correct horse battery")
                for n in range(12)
            )
        )
    finally:
        checks.close()

    assert results == [n % 2 == 0 for n in range(12)]
    assert most == 2
