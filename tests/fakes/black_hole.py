"""A server on loopback that accepts connections and never answers a byte: a half-dead host,
a firewall that drops replies. Whatever talks to it waits until its own timeout."""

from __future__ import annotations

import socket
import threading
from typing import Self


class BlackHole:
    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []

    def start(self) -> Self:
        self._listener.listen(256)
        threading.Thread(target=self._accept, daemon=True, name="black-hole").start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self._listener.accept()[0])
            except OSError:
                return

    def stop(self) -> None:
        self._listener.close()
        for conn in self.accepted:
            conn.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
