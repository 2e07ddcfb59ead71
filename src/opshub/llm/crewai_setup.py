"""What a server must settle before CrewAI is imported (see specs/crewai-notes.md).

Telemetry off (on a closed network a run otherwise waits ~10 s at exit for a telemetry host);
CrewAI's own files in opshub's data directory, not a directory shared by every tenant under
~/.local/share; and no ambient provider keys, which CrewAI would otherwise fall back to.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

SWITCHES = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}
AMBIENT_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
_lock = threading.Lock()


def prepare_crewai(data_dir: Path) -> None:
    with _lock:
        os.environ.update(SWITCHES)
        os.environ["CREWAI_STORAGE_DIR"] = str((data_dir / "crewai").resolve())
        import crewai  # noqa: F401 - imported here, after the switches; it loads .env files

        # Removed after the import, since crewai.llm's load_dotenv() may have brought them in.
        for name in AMBIENT_KEYS:
            os.environ.pop(name, None)
