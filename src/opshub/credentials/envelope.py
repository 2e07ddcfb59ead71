"""AES-256-GCM envelope encryption for the embedded credential backend.

Each tenant has a random data key; secrets are encrypted with it, bound to their tenant and
provider as associated data, so a ciphertext copied to another row does not decrypt. Data keys
are stored wrapped by a master key. The master keyring holds the current key first and older
keys after it: rotation adds a key and re-wraps the data keys, and a process still holding the
old ring re-reads it when it meets a key id it does not know.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opshub.credentials.errors import CredentialStoreError
from opshub.keyfile import write_secret_file

NONCE_BYTES = 12


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def encrypt(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise CredentialStoreError("a stored secret does not decrypt with its key") from None


def parse_key(text: str) -> bytes:
    """A 256-bit key written as 64 hex digits or as base64."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise CredentialStoreError("a master key must be 32 bytes in hex or base64") from None
    if len(key) != 32:
        raise CredentialStoreError("a master key must be 32 bytes in hex or base64")
    return key


@dataclass
class MasterKeyring:
    keys: list[bytes]
    path: Path | None = None
    _by_id: dict[str, bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise CredentialStoreError("the master keyring is empty")
        self._by_id = {key_id(k): k for k in self.keys}

    def __repr__(self) -> str:
        return f"MasterKeyring(current={self.current_id}, keys={len(self.keys)})"

    @property
    def current_id(self) -> str:
        return key_id(self.keys[0])

    @classmethod
    def load(cls, *, env_keys: str | None, path: Path) -> MasterKeyring:
        """From OPSHUB_MASTER_KEY (comma-separated, current first), else the key file."""
        if env_keys:
            return cls([parse_key(k) for k in env_keys.split(",") if k.strip()])
        if not path.exists():
            _write_keyring(path, [secrets.token_bytes(32)], replace=False)
        return cls([parse_key(line) for line in path.read_text().split() if line], path=path)

    def wrap(self, data_key: bytes) -> tuple[bytes, str]:
        return encrypt(self.keys[0], data_key, aad=b"opshub-data-key"), self.current_id

    def unwrap(self, wrapped: bytes, master_key_id: str) -> bytes:
        key = self._by_id.get(master_key_id)
        if key is None and self.path is not None:
            fresh = MasterKeyring.load(env_keys=None, path=self.path)
            self.keys, self._by_id = fresh.keys, fresh._by_id
            key = self._by_id.get(master_key_id)
        if key is None:
            raise CredentialStoreError(f"master key {master_key_id} is not in the keyring")
        return decrypt(key, wrapped, aad=b"opshub-data-key")

    def rotated(self, new_key: bytes | None = None) -> MasterKeyring:
        """A ring with a new current key; the old ones stay to read data keys not yet re-wrapped."""
        ring = MasterKeyring([new_key or secrets.token_bytes(32), *self.keys], path=self.path)
        if self.path is not None:
            _write_keyring(self.path, ring.keys, replace=True)
        return ring


def _write_keyring(path: Path, keys: list[bytes], *, replace: bool) -> None:
    write_secret_file(path, "\n".join(k.hex() for k in keys) + "\n", replace=replace)
