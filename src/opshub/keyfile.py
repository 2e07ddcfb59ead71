"""Secrets generated once on first start and kept in 0600 files in the data directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_secret_file(path: Path, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically.

    With ``replace=False`` an existing file wins: link() is atomic and refuses to overwrite, so
    when processes start together one secret wins and every process reads that one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if replace:
        os.replace(candidate, path)
        return
    with contextlib.suppress(FileExistsError):
        os.link(candidate, path)
    candidate.unlink()


def read_or_create_key_file(path: Path, *, nbytes: int = 32) -> bytes:
    if not path.exists():
        write_secret_file(path, secrets.token_bytes(nbytes).hex(), replace=False)
    return bytes.fromhex(path.read_text().strip())
