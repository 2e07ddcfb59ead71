"""Password hashes (argon2), session tokens (JWT) and API keys (``ohk_``, stored as SHA-256)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from opshub.auth.errors import AuthenticationError
from opshub.auth.models import Role

API_KEY_PREFIX = "ohk_"
_hasher = PasswordHasher()
# Verifying against this when the e-mail is unknown keeps the response time the same as for a
# wrong password, so login timing does not reveal which e-mails exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class PasswordChecks:
    """Password verifications on a few threads of their own: a login flood queues here instead
    of taking every core (and the default pool's threads) from other tenants' requests."""

    def __init__(self, *, concurrency: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="password")

    async def verify(self, password_hash: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, verify_password, password_hash, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def new_api_key() -> tuple[str, str, bytes]:
    """Return (the key, shown once; its display prefix; the hash that is stored)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:12], hash_api_key(key)


def hash_api_key(key: str) -> bytes:
    # API keys carry 256 random bits, so a fast hash is enough: nothing is left to brute-force.
    return hashlib.sha256(key.encode()).digest()


def issue_token(
    *, secret: bytes, user_id: uuid.UUID, tenant_id: uuid.UUID, role: Role, ttl_seconds: int
) -> tuple[str, int]:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "role": role.value,
        "iat": now,
        "exp": now + ttl_seconds,
        "typ": "session",
    }
    return jwt.encode(claims, secret, algorithm="HS256"), ttl_seconds


def decode_token(token: str, *, secret: bytes) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "tid"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("the session token has expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationError("the session token is not valid", code="invalid_token") from exc
    if claims.get("typ") != "session":
        raise AuthenticationError("the session token is not valid", code="invalid_token")
    return claims
