"""Secrets generated once on first start and kept in a 0600 file in the data directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def read_or_create_key_file(path: Path, *, nbytes: int = 32) -> bytes:
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_bytes(nbytes).hex())
    # link() is atomic and refuses to overwrite: when processes start together, one key wins
    # and every process reads that one.
    with contextlib.suppress(FileExistsError):
        os.link(candidate, path)
    candidate.unlink()
    return bytes.fromhex(path.read_text().strip())
