"""One supervisor over a hub's processes: ``opshub serve``, ``worker`` and ``api`` run a child
per core, since one process's crews and requests share one GIL and leave the other cores idle.

The supervisor runs nothing of the hub itself. It starts each group's ``processes`` children
(spawned, so each imports afresh: no threads or connections are inherited), each calling the
group's ``target`` with its index in the group; ``serve`` has two groups, the API processes and
the worker processes, so requests and live events never wait behind a crew's CPU. A child that
dies is started again after a backoff (1 s, doubling to 30 s while it keeps dying young).
SIGTERM or SIGINT drains: each child gets one SIGTERM (its own graceful shutdown: the worker
finishes or hands back its runs, the API its requests), then whatever is left after
``grace_seconds`` is killed. The children are in process groups of their own, so Ctrl-C in a
terminal reaches them once, through the supervisor.

The embedded PostgreSQL belongs to the supervisor's process: the children are given its URL
(``env``) and never start or stop it, so a child killed with SIGKILL leaves nothing behind, and
the server stops when the supervisor exits. A child whose supervisor is gone stops on its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

import structlog

from opshub.process import INDEX_VARIABLE, ROLE_VARIABLE

log = structlog.get_logger(__name__)
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0  # a child that lived this long starts again without delay growth


def default_processes() -> int:
    """One per core this process may run on."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class ProcessGroup:
    role: str
    """What the children do (``api``, ``worker``): their process names and log lines say it."""
    target: Callable[[int], None]
    """Run in each child with its index in the group; picklable (a module-level function or
    its partial)."""
    processes: int


@dataclass
class _Child:
    group: ProcessGroup
    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    groups: Sequence[ProcessGroup]
    grace_seconds: float
    env: Mapping[str, str] = field(default_factory=dict)
    _children: list[_Child] = field(default_factory=list)
    _stopping: bool = False

    def run(self) -> int:
        """Until SIGTERM or SIGINT; then drain and return 0."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        self._children = [
            _Child(group, index) for group in self.groups for index in range(group.processes)
        ]
        for child in self._children:
            self._start(child)
        while not self._stopping:
            self._supervise()
        self._drain()
        return 0

    def _stop(self, _signum: int, _frame: object) -> None:
        self._stopping = True

    def _start(self, child: _Child) -> None:
        context = multiprocessing.get_context("spawn")
        role = child.group.role
        env = {**self.env, INDEX_VARIABLE: str(child.index), ROLE_VARIABLE: role}
        process = context.Process(
            target=_child_main,
            args=(child.group.target, child.index, env, os.getpid()),
            name=f"opshub-{role}-{child.index}",
        )
        process.start()
        child.process, child.started_at, child.restart_at = process, time.monotonic(), None
        log.info("process started", role=role, index=child.index, pid=process.pid)

    def _supervise(self) -> None:
        alive = [c.process.sentinel for c in self._children if c.process is not None]
        due = [c.restart_at for c in self._children if c.restart_at is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else 1.0
        wait(alive, timeout=min(timeout, 1.0))  # a signal sets _stopping; look at least each second
        now = time.monotonic()
        for child in self._children:
            process = child.process
            if process is not None and process.exitcode is not None and not self._stopping:
                lived = now - child.started_at
                child.failures = 0 if lived >= HEALTHY_AFTER_SECONDS else child.failures + 1
                delay = min(
                    FIRST_BACKOFF_SECONDS * 2 ** max(child.failures - 1, 0), MAX_BACKOFF_SECONDS
                )
                log.warning(
                    "process exited; starting it again",
                    role=child.group.role,
                    index=child.index,
                    pid=process.pid,
                    exitcode=process.exitcode,
                    restart_in=delay,
                )
                process.close()
                child.process, child.restart_at = None, now + delay
            if child.restart_at is not None and child.restart_at <= now and not self._stopping:
                self._start(child)

    def _drain(self) -> None:
        running = [c.process for c in self._children if c.process is not None]
        log.info("stopping processes", processes=len(running))
        for process in running:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                log.warning("process outlived the grace period; killed", pid=process.pid)
                process.kill()
                process.join(5)


def _child_main(
    target: Callable[[int], None], index: int, env: Mapping[str, str], parent: int
) -> None:
    os.setpgrp()  # Ctrl-C reaches the supervisor alone, which passes one SIGTERM on
    os.environ.update(env)
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()
    target(index)


def _stop_when_orphaned(parent: int) -> None:
    """A supervisor killed outright can't drain its children: they stop themselves, gracefully."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
