"""AES-256-GCM envelope encryption and the master keyring of the embedded credential backend."""

from __future__ import annotations

import base64
import secrets
import stat
from pathlib import Path

import pytest

from opshub.credentials.envelope import (
    NONCE_BYTES,
    MasterKeyring,
    decrypt,
    encrypt,
    key_id,
    parse_key,
)
from opshub.credentials.errors import CredentialStoreError

AAD = b"00000000-0000-0000-0000-000000000001:openai"
PLAINTEXT = b'{"api_key":"sk-envelope-test-0123456789"}'


def test_a_sealed_secret_opens_with_its_key_and_associated_data() -> None:
    key = secrets.token_bytes(32)
    sealed = encrypt(key, PLAINTEXT, aad=AAD)

    assert decrypt(key, sealed, aad=AAD) == PLAINTEXT
    assert PLAINTEXT not in sealed and b"sk-envelope" not in sealed
    # Nonce, ciphertext, 16-byte tag; a fresh nonce each time, so equal secrets look different.
    assert len(sealed) == NONCE_BYTES + len(PLAINTEXT) + 16
    assert encrypt(key, PLAINTEXT, aad=AAD) != sealed


def test_other_associated_data_does_not_open_a_secret() -> None:
    key = secrets.token_bytes(32)
    sealed = encrypt(key, PLAINTEXT, aad=AAD)

    for other in (b"00000000-0000-0000-0000-000000000002:openai", AAD[:-1], b""):
        with pytest.raises(CredentialStoreError):
            decrypt(key, sealed, aad=other)


@pytest.mark.parametrize("position", [0, NONCE_BYTES - 1, NONCE_BYTES, NONCE_BYTES + 5, -1])
def test_a_tampered_byte_is_refused(position: int) -> None:
    key = secrets.token_bytes(32)
    sealed = bytearray(encrypt(key, PLAINTEXT, aad=AAD))
    sealed[position] ^= 0x01

    with pytest.raises(CredentialStoreError) as raised:
        decrypt(key, bytes(sealed), aad=AAD)
    assert "sk-envelope" not in str(raised.value)


def test_another_key_does_not_open_a_secret() -> None:
    sealed = encrypt(secrets.token_bytes(32), PLAINTEXT, aad=AAD)
    with pytest.raises(CredentialStoreError):
        decrypt(secrets.token_bytes(32), sealed, aad=AAD)


def test_the_key_file_is_created_0600_once_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "master_keys"

    first = MasterKeyring.load(env_keys=None, path=path)

    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.keys) == 1 and len(first.keys[0]) == 32
    assert path.read_text().split() == [first.keys[0].hex()]
    again = MasterKeyring.load(env_keys=None, path=path)
    assert again.keys == first.keys and again.current_id == first.current_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_keyring_does_not_show_its_keys(tmp_path: Path) -> None:
    ring = MasterKeyring.load(env_keys=None, path=tmp_path / "master_keys")
    shown = repr(ring) + str(ring)
    assert ring.keys[0].hex() not in shown
    assert base64.b64encode(ring.keys[0]).decode() not in shown
    assert ring.current_id in shown


def test_parse_key_accepts_hex_and_base64() -> None:
    key = secrets.token_bytes(32)

    assert parse_key(key.hex()) == key
    assert parse_key(key.hex().upper()) == key
    assert parse_key(f"  {key.hex()}\n") == key
    assert parse_key(base64.b64encode(key).decode()) == key


@pytest.mark.parametrize(
    "text",
    [
        secrets.token_bytes(31).hex(),
        base64.b64encode(secrets.token_bytes(31)).decode(),
        secrets.token_bytes(33).hex(),
        base64.b64encode(secrets.token_bytes(33)).decode(),
        "z" * 64,
        "not a key at all",
        "",
    ],
    ids=["hex-31", "b64-31", "hex-33", "b64-33", "64-non-hex", "garbage", "empty"],
)
def test_parse_key_refuses_anything_but_32_bytes(text: str) -> None:
    with pytest.raises(CredentialStoreError, match="32 bytes"):
        parse_key(text)


def test_the_env_form_lists_keys_current_first() -> None:
    new, old = secrets.token_bytes(32), secrets.token_bytes(32)

    ring = MasterKeyring.load(
        env_keys=f"{new.hex()}, {base64.b64encode(old).decode()}", path=Path("/nonexistent")
    )

    assert ring.keys == [new, old]
    assert ring.current_id == key_id(new)
    assert not Path("/nonexistent").exists()


def test_a_rotated_ring_reads_data_keys_wrapped_by_the_old_key() -> None:
    ring = MasterKeyring([secrets.token_bytes(32)])
    data_key = secrets.token_bytes(32)
    wrapped, old_id = ring.wrap(data_key)
    assert data_key not in wrapped and old_id == ring.current_id

    rotated = ring.rotated()

    assert rotated.current_id != old_id
    assert rotated.unwrap(wrapped, old_id) == data_key
    rewrapped, new_id = rotated.wrap(data_key)
    assert new_id == rotated.current_id
    assert rotated.unwrap(rewrapped, new_id) == data_key


def test_rotation_writes_the_new_ring_and_an_old_holder_picks_it_up(tmp_path: Path) -> None:
    path = tmp_path / "master_keys"
    ring = MasterKeyring.load(env_keys=None, path=path)
    old_holder = MasterKeyring.load(env_keys=None, path=path)
    data_key = secrets.token_bytes(32)

    rotated = ring.rotated()
    wrapped, new_id = rotated.wrap(data_key)

    assert path.read_text().split() == [k.hex() for k in rotated.keys]
    assert len(rotated.keys) == 2 and rotated.keys[1] == ring.keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The old holder does not know the new key id yet: it re-reads the file.
    assert old_holder.unwrap(wrapped, new_id) == data_key
    assert old_holder.current_id == new_id


def test_an_unknown_key_id_is_refused() -> None:
    ring = MasterKeyring([secrets.token_bytes(32)])
    other = MasterKeyring([secrets.token_bytes(32)])
    wrapped, other_id = other.wrap(secrets.token_bytes(32))

    with pytest.raises(CredentialStoreError, match=other_id):
        ring.unwrap(wrapped, other_id)


def test_an_unknown_key_id_is_refused_after_re_reading_the_file(tmp_path: Path) -> None:
    ring = MasterKeyring.load(env_keys=None, path=tmp_path / "master_keys")
    with pytest.raises(CredentialStoreError):
        ring.unwrap(b"\x00" * 60, "0123456789ab")


def test_a_data_key_wrapped_by_a_key_with_the_same_id_but_tampered_is_refused() -> None:
    ring = MasterKeyring([secrets.token_bytes(32)])
    wrapped, kid = ring.wrap(secrets.token_bytes(32))
    with pytest.raises(CredentialStoreError):
        ring.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), kid)


def test_an_empty_keyring_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialStoreError):
        MasterKeyring([])
    with pytest.raises(CredentialStoreError):
        MasterKeyring.load(env_keys=" , ", path=tmp_path / "unused")
