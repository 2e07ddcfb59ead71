"""What a server must settle before CrewAI is imported (see specs/crewai-notes.md).

CrewAI's telemetry off by its own switches (on a closed network a run otherwise waits ~10 s at
exit for a telemetry host), never by ``OTEL_SDK_DISABLED``, which would switch off the operator's
own tracing too;
CrewAI's own files in opshub's data directory, not a directory shared by every tenant under
~/.local/share, and one for each process of the hub (the locks below are in-process); no
ambient provider keys, which CrewAI would otherwise fall back to; and
in-process locks for CrewAI's own bookkeeping files: its default is a file lock that, contended
by a worker's concurrent crews, retries every 250 ms (measured in bench/runtime.py's profile).

``install_once``: what registers handlers with CrewAI's process-wide event bus (the meter, a run's
live events, its spans) does so once per process, however many workers or tests ask.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from opshub.process import process_index

SWITCHES = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}
AMBIENT_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
_lock = threading.Lock()
_named_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_installing = threading.Lock()
_installed: set[str] = set()


@contextmanager
def _in_process_lock(name: str, *, timeout: float = 120) -> Iterator[None]:
    with _lock:
        named = _named_locks[name]
    if not named.acquire(timeout=timeout):
        raise TimeoutError(f"CrewAI lock {name!r} not acquired in {timeout} s")
    try:
        yield
    finally:
        named.release()


def prepare_crewai(data_dir: Path) -> None:
    with _lock:
        os.environ.update(SWITCHES)
        index = process_index()
        storage = data_dir / "crewai" if index is None else data_dir / "crewai" / f"process-{index}"
        os.environ["CREWAI_STORAGE_DIR"] = str(storage.resolve())
        import crewai  # noqa: F401 - imported here, after the switches; it loads .env files
        from crewai_core.lock_store import set_lock_backend

        set_lock_backend(_in_process_lock)

        # Removed after the import, since crewai.llm's load_dotenv() may have brought them in.
        for name in AMBIENT_KEYS:
            os.environ.pop(name, None)


def install_once(name: str, register: Callable[[], None]) -> None:
    """Run ``register`` the first time ``name`` is installed in this process, never again."""
    with _installing:
        if name in _installed:
            return
        register()
        _installed.add(name)
