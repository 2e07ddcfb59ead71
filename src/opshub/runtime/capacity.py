"""How many crews one worker process runs at once, unless told: as many as its share of memory
holds. A crew spends nearly all its time waiting on the model (2-30 s a call, several calls), so
CPU is not what bounds it; a fixed 32 left a 2-core machine with 34 calls in flight.

Each running crew adds ``worker_crew_rss_mb`` of resident memory (measured by
``bench/runtime.py``'s every_core scenario); the share is ``worker_memory_mb``, else half the
memory available when the worker starts (the cgroup's limit where lower), split between the
hub's processes. Database pools don't follow: a crew waiting on a model holds no connection.
"""

from __future__ import annotations

from pathlib import Path

from opshub.config import Settings

MIN_CREWS = 8
MAX_CREWS = 2000
CGROUP = Path("/sys/fs/cgroup")


def crews_per_worker(settings: Settings, *, processes: int) -> int:
    if settings.worker_concurrency is not None:
        return settings.worker_concurrency
    budget = settings.worker_memory_mb or available_mb() / 2 / max(processes, 1)
    return max(MIN_CREWS, min(MAX_CREWS, int(budget / settings.worker_crew_rss_mb)))


def available_mb() -> float:
    """Memory free for new work now: the kernel's estimate, or what a cgroup limit leaves."""
    available = float("inf")
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) / 1024
    limit, current = CGROUP / "memory.max", CGROUP / "memory.current"
    if limit.exists() and current.exists() and limit.read_text().strip() != "max":
        left = int(limit.read_text()) - int(current.read_text())
        available = min(available, left / 2**20)
    return available
