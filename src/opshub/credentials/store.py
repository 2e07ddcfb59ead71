"""Where secrets live: Vault KV v2 (``OPSHUB_VAULT_ADDR``) or encrypted rows in PostgreSQL.

Both keep the credential's metadata row in PostgreSQL (provider, fingerprint, status); only the
secret itself moves. ``seal`` stores a secret and says what the row must hold (ciphertext for the
database, nothing for Vault) and the new version; ``open`` reads it back for a row.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import hvac
import orjson
import requests
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest, VaultDown

from opshub.config import Settings
from opshub.credentials import envelope
from opshub.credentials.envelope import MasterKeyring
from opshub.credentials.errors import CredentialConflictError, CredentialStoreError
from opshub.db.sql import Connection, load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes | None
    version: int


@dataclass(frozen=True)
class StoredRow:
    tenant_id: uuid.UUID
    provider: str
    version: int
    ciphertext: bytes | None


class SecretStore(Protocol):
    backend: str

    async def seal(
        self,
        conn: Connection,
        *,
        tenant_id: uuid.UUID,
        provider: str,
        secret: dict[str, Any],
        current_version: int | None,
    ) -> Sealed: ...

    async def open(self, conn: Connection, row: StoredRow) -> dict[str, Any]: ...

    async def destroy(self, *, tenant_id: uuid.UUID, provider: str) -> None: ...


def _aad(tenant_id: uuid.UUID, provider: str) -> bytes:
    return f"{tenant_id}:{provider}".encode()


class DatabaseSecretStore:
    """AES-256-GCM with a data key per tenant, wrapped by the master keyring."""

    backend = "database"

    def __init__(self, keyring: MasterKeyring) -> None:
        self.keyring = keyring

    async def _data_key(self, conn: Connection, tenant_id: uuid.UUID) -> bytes:
        row = await QUERIES["get_data_key"].fetchrow(conn, tenant_id=tenant_id)
        if row is None:
            wrapped, master_key_id = self.keyring.wrap(secrets.token_bytes(32))
            await QUERIES["insert_data_key"].execute(
                conn, tenant_id=tenant_id, wrapped_key=wrapped, master_key_id=master_key_id
            )
            row = await QUERIES["get_data_key"].fetchone(conn, tenant_id=tenant_id)
        return self.keyring.unwrap(row["wrapped_key"], row["master_key_id"])

    async def seal(
        self,
        conn: Connection,
        *,
        tenant_id: uuid.UUID,
        provider: str,
        secret: dict[str, Any],
        current_version: int | None,
    ) -> Sealed:
        key = await self._data_key(conn, tenant_id)
        sealed = envelope.encrypt(key, orjson.dumps(secret), aad=_aad(tenant_id, provider))
        return Sealed(ciphertext=sealed, version=(current_version or 0) + 1)

    async def open(self, conn: Connection, row: StoredRow) -> dict[str, Any]:
        if row.ciphertext is None:
            raise CredentialStoreError(f"the {row.provider} secret is not in the database")
        key = await self._data_key(conn, row.tenant_id)
        plain = envelope.decrypt(key, row.ciphertext, aad=_aad(row.tenant_id, row.provider))
        secret: dict[str, Any] = orjson.loads(plain)
        return secret

    async def destroy(self, *, tenant_id: uuid.UUID, provider: str) -> None:
        """The ciphertext goes with its row."""

    async def rotate_master_key(self, owner_conn: Connection, new_key: bytes | None = None) -> int:
        """Re-wrap every tenant's data key with a new master key; secrets stay as they are.

        The new key goes first in the ring and the old ones stay, so every data key is readable
        at every moment: before this commits, after it, and in processes holding the old ring.
        """
        ring = self.keyring.rotated(new_key)
        rows = await QUERIES["all_data_keys"].fetch(owner_conn)
        for row in rows:
            data_key = ring.unwrap(row["wrapped_key"], row["master_key_id"])
            wrapped, master_key_id = ring.wrap(data_key)
            await QUERIES["rewrap_data_key"].execute(
                owner_conn,
                tenant_id=row["tenant_id"],
                wrapped_key=wrapped,
                master_key_id=master_key_id,
            )
        self.keyring = ring
        return len(rows)


class VaultSecretStore:
    """Vault KV v2 through hvac: one secret per tenant and provider, written with check-and-set."""

    backend = "vault"

    def __init__(self, settings: Settings) -> None:
        self._mount = settings.vault_mount
        self._prefix = settings.vault_prefix.strip("/")
        token = settings.vault_token.get_secret_value() if settings.vault_token else None
        self._client = hvac.Client(url=settings.vault_addr, token=token, timeout=5)
        if settings.vault_role_id and settings.vault_secret_id:
            self._client.auth.approle.login(
                role_id=settings.vault_role_id,
                secret_id=settings.vault_secret_id.get_secret_value(),
            )

    def path(self, tenant_id: uuid.UUID, provider: str) -> str:
        return f"{self._prefix}/{tenant_id}/{provider}"

    async def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, mount_point=self._mount, **kwargs)
        except (VaultDown, requests.ConnectionError, requests.Timeout):
            raise CredentialStoreError("Vault can't be reached") from None
        except Forbidden:
            raise CredentialStoreError("Vault refused opshub's token for this path") from None

    async def seal(
        self,
        conn: Connection,  # noqa: ARG002 - the protocol's; Vault needs no database
        *,
        tenant_id: uuid.UUID,
        provider: str,
        secret: dict[str, Any],
        current_version: int | None,
    ) -> Sealed:
        kv = self._client.secrets.kv.v2
        path = self.path(tenant_id, provider)
        try:
            response = await self._call(
                kv.create_or_update_secret, path=path, secret=secret, cas=current_version or 0
            )
        except InvalidRequest:
            # opshub's own writers are serialised by the row lock, so a version Vault has and
            # the row doesn't was left by a save whose database transaction rolled back: take
            # its place. A second mismatch is a writer outside opshub, and a real conflict.
            metadata = await self._call(kv.read_secret_metadata, path=path)
            latest = int(metadata["data"]["current_version"])
            try:
                response = await self._call(
                    kv.create_or_update_secret, path=path, secret=secret, cas=latest
                )
            except InvalidRequest:
                raise CredentialConflictError(
                    f"the {provider} credential changed meanwhile; read it and try again"
                ) from None
        return Sealed(ciphertext=None, version=int(response["data"]["version"]))

    async def open(
        self,
        conn: Connection,  # noqa: ARG002 - the protocol's; Vault needs no database
        row: StoredRow,
    ) -> dict[str, Any]:
        kv = self._client.secrets.kv.v2
        try:
            response = await self._call(
                kv.read_secret_version,
                path=self.path(row.tenant_id, row.provider),
                version=row.version,
                raise_on_deleted_version=True,
            )
        except InvalidPath:
            raise CredentialStoreError(f"the {row.provider} secret is missing from Vault") from None
        secret: dict[str, Any] = response["data"]["data"]
        return secret

    async def destroy(self, *, tenant_id: uuid.UUID, provider: str) -> None:
        kv = self._client.secrets.kv.v2
        try:
            await self._call(
                kv.delete_metadata_and_all_versions, path=self.path(tenant_id, provider)
            )
        except InvalidPath:
            return


def open_secret_store(settings: Settings) -> SecretStore:
    if settings.vault_addr:
        return VaultSecretStore(settings)
    env_keys = settings.master_key.get_secret_value() if settings.master_key else None
    keyring = MasterKeyring.load(env_keys=env_keys, path=settings.data_dir / "master_keys")
    return DatabaseSecretStore(keyring)
