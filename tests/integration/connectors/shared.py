"""What the connector clients' tests share: a retry policy that waits milliseconds, not seconds,
and the reporting period the fakes hold data for."""

from __future__ import annotations

from datetime import date

from opshub.connectors.http import RetryPolicy

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_wait=5.0)
OCTOBER = {"start": date(2026, 10, 1), "end": date(2026, 10, 31)}
