"""Process-wide tuning for the long-running services (API, worker)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then move every object alive after start-up out of the collector's view.

    Imports, models and pools live as long as the process; scanned in every full collection
    they made one take about half a second, under live traffic (measured: the first events of
    500 SSE watchers arrived 550 ms late). Frozen, a collection walks only what requests made.
    """
    gc.collect()
    gc.freeze()
