"""A noisy tenant, in a process of its own so its client work doesn't slow the measuring one:
``python -m tests.faults.noise BASE_URL API_KEY READERS CHECKERS`` keeps READERS reads and
CHECKERS credential checks in flight (each sent as soon as the last is answered) until its
stdin closes, then prints how many requests it sent."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import httpx

CHECK = "/v1/credentials/openai_compatible/check"


async def main(base_url: str, api_key: str, readers: int, checkers: int) -> None:
    stop = asyncio.Event()
    sent = 0
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=readers + checkers)

    async def keep_sending(client: httpx.AsyncClient, method: str, path: str) -> None:
        nonlocal sent
        while not stop.is_set():
            with contextlib.suppress(httpx.TransportError):
                await client.request(method, path, headers=headers)
            sent += 1

    async def until_stdin_closes() -> None:
        await asyncio.to_thread(sys.stdin.read)
        stop.set()

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        await asyncio.gather(
            until_stdin_closes(),
            *(keep_sending(client, "POST", CHECK) for _ in range(checkers)),
            *(keep_sending(client, "GET", "/v1/data/leads") for _ in range(readers)),
        )
    print(sent, flush=True)  # noqa: T201 - the parent reads it


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
