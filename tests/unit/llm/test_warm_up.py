"""The worker's SDK warm-up: the clients' call paths load, and nothing leaves the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_warm_up_loads_the_sdks_call_paths_without_opening_a_socket() -> None:
    # A fresh interpreter: in this one, other tests may have loaded the modules already.
    script = textwrap.dedent(
        """
        import socket, sys

        def refuse(*args, **kwargs):
            raise AssertionError("the warm-up opened a network connection")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        from opshub.llm.warm_up import warm_up_model_sdks

        warm_up_model_sdks()
        loaded = set(sys.modules)
        assert "openai.lib.streaming.chat" in loaded, "openai's streaming path not loaded"
        assert "anthropic.lib.streaming" in loaded, "anthropic's streaming path not loaded"
        print("warm")
        """
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "warm"
