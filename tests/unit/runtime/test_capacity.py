"""How many crews a worker process runs at once: as many as its share of memory holds, unless
OPSHUB_WORKER_CONCURRENCY says otherwise."""

from __future__ import annotations

import pytest

from opshub.config import Settings
from opshub.runtime import capacity
from opshub.runtime.capacity import crews_per_worker


def test_a_gigabyte_for_crews_of_four_megabytes_runs_250_at_once() -> None:
    settings = Settings(worker_memory_mb=1000, worker_crew_rss_mb=4.0)
    assert crews_per_worker(settings, processes=2) == 250


def test_an_explicit_concurrency_wins() -> None:
    settings = Settings(worker_concurrency=12, worker_memory_mb=1000, worker_crew_rss_mb=4.0)
    assert crews_per_worker(settings, processes=1) == 12


def test_without_a_budget_half_the_available_memory_is_split_between_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(capacity, "available_mb", lambda: 8000.0)
    settings = Settings(worker_crew_rss_mb=5.0)
    assert crews_per_worker(settings, processes=1) == 800
    assert crews_per_worker(settings, processes=4) == 200


def test_little_memory_still_runs_a_few_crews_and_plenty_is_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(capacity, "available_mb", lambda: 10.0)
    assert crews_per_worker(Settings(worker_crew_rss_mb=5.0), processes=1) == capacity.MIN_CREWS
    monkeypatch.setattr(capacity, "available_mb", lambda: 10_000_000.0)
    assert crews_per_worker(Settings(worker_crew_rss_mb=5.0), processes=1) == capacity.MAX_CREWS


def test_the_memory_available_is_read_from_this_machine() -> None:
    assert 0 < capacity.available_mb() < float("inf")
