"""A fork server for the fault tests' opshub processes.

``python -m tests.faults.forkserver`` imports what ``opshub worker``, ``serve`` and ``api`` import
(the CLI, the hub, the worker and CrewAI: tens of seconds on a loaded machine), once for the
session, then forks a child per request that runs ``opshub <args>`` as ``python -m opshub`` would,
with the request's environment and its output in the request's log file. A child is a process of
its own, started the way a deployment starts one, only without paying for the imports again; the
tests signal it by pid. Single-threaded (a fork copies only the calling thread), no event loop.

Protocol, a JSON object a line: in, ``{"args": [...], "env": {...}, "log": "path"}``; out, the
child's ``{"pid": N}`` at once, and ``{"exited": N, "code": C}`` when it ends (``C`` as
``Popen.returncode`` gives it: minus the signal for a signalled child). The server ends when its
stdin closes.
"""

from __future__ import annotations

import atexit
import faulthandler
import json
import os
import random
import selectors
import shutil
import sys
import tempfile
import threading


def preload(storage: str) -> None:
    """The imports a child would otherwise make itself, with CrewAI's switches as opshub sets
    them (``opshub.llm.crewai_setup``; a child sets its own storage directory again)."""
    from opshub.llm.crewai_setup import AMBIENT_KEYS, SWITCHES

    os.environ.update(SWITCHES)
    os.environ["CREWAI_STORAGE_DIR"] = storage
    import crewai  # noqa: F401

    import opshub.app
    import opshub.cli
    import opshub.runtime.crew_run
    import opshub.runtime.worker  # noqa: F401

    for name in AMBIENT_KEYS:
        os.environ.pop(name, None)
    assert threading.active_count() == 1, "a preloaded module started a thread: forks would hang"


def run_child(args: list[str], env: dict[str, str], log: str) -> None:
    """In the forked child: become ``python -m opshub <args>``; never returns."""
    code = 1
    try:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.environ.clear()
        os.environ.update(env)
        faulthandler.enable()
        random.seed()
        sys.argv = ["opshub", *args]
        from opshub.cli import main

        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # the child's own end, reported as a process's would be
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


def send(message: dict[str, int]) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def serve() -> None:
    # Not a TemporaryDirectory: its finalizer is an exit function, which every child runs.
    storage = tempfile.mkdtemp(prefix="ohf-crewai-")
    try:
        preload(storage)
        send({"ready": 1})
        fork_children()
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def fork_children() -> None:
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    pending = b""
    children: set[int] = set()
    while True:
        if selector.select(timeout=0.05):
            chunk = os.read(0, 65536)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    run_child(request["args"], request["env"], request["log"])
                children.add(pid)
                send({"pid": pid})
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    serve()
