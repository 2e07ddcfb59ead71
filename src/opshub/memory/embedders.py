"""Sentence embeddings behind one interface: local MiniLM, or OpenAI with the tenant's key.

Every vector is 384-dimensional and unit length, so one ``vector(384)`` column holds both models
(OpenAI is asked for 384 ``dimensions``) and cosine distance is comparable within a model. The
model's name is stored on every row; only vectors of the same model are ever compared.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
import openai

from opshub.credentials.models import Provider
from opshub.memory.errors import EmbeddingFailedError, UnknownEmbeddingModelError
from opshub.memory.minilm import MiniLM

if TYPE_CHECKING:
    from opshub.config import Settings
    from opshub.credentials.resolver import CredentialResolver

DIMENSIONS = 384
LOCAL_MODEL = "local/all-MiniLM-L6-v2"
OPENAI_MODEL = "openai/text-embedding-3-small"
MODELS = (LOCAL_MODEL, OPENAI_MODEL)
# Texts one forward pass of the local model takes from the queue (encoded 64 at a time).
MAX_TEXTS_PER_PASS = 256


class Embedder(Protocol):
    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


_model_lock = threading.Lock()
_loaded: dict[Path, MiniLM] = {}


def _local_model(cache_dir: Path) -> MiniLM:
    """One copy of the weights per process, however many embedders share it."""
    with _model_lock:
        if cache_dir not in _loaded:
            _loaded[cache_dir] = MiniLM(cache_dir=cache_dir)
        return _loaded[cache_dir]


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU under ONNX Runtime (see ``minilm``).

    Loaded once per process on first use (under a second once the graph is exported). Requests
    are batched: while one batch is encoded in the embedder's own thread, the next requests
    queue, and all of them go in the next forward pass. A worker's concurrent runs (a query
    before each, an outcome after) then cost a few batched passes instead of one pass each, all
    competing for two cores.
    """

    model = LOCAL_MODEL

    def __init__(self, *, cache_dir: Path, batch_size: int = 64) -> None:
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._pending: list[tuple[list[str], asyncio.Future[list[list[float]]]]] = []
        self._draining: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opshub-embed")

    async def warm_up(self) -> None:
        await asyncio.to_thread(_local_model, self._cache_dir)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        return _local_model(self._cache_dir).encode(texts, batch_size=self._batch_size)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[list[float]]] = loop.create_future()
        self._pending.append((list(texts), future))
        if self._draining is None or self._draining.done():
            self._draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch: list[tuple[list[str], asyncio.Future[list[list[float]]]]] = []
            size = 0
            while self._pending and (
                not batch or size + len(self._pending[0][0]) <= MAX_TEXTS_PER_PASS
            ):
                texts, future = self._pending.pop(0)
                batch.append((texts, future))
                size += len(texts)
            flat = [text for texts, _ in batch for text in texts]
            try:
                vectors = await loop.run_in_executor(self._thread, self.encode, flat)
            except Exception as exc:  # every waiter of the batch learns why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            offset = 0
            for texts, future in batch:
                if not future.done():  # a caller that gave up (cancelled) is skipped
                    future.set_result(vectors[offset : offset + len(texts)])
                offset += len(texts)


class OpenAIEmbedder:
    """``text-embedding-3-small`` at 384 dimensions, paid with the tenant's resolved OpenAI key."""

    model = OPENAI_MODEL

    def __init__(
        self,
        *,
        resolver: CredentialResolver,
        tenant_id: uuid.UUID,
        settings: Settings,
    ) -> None:
        self._resolver = resolver
        self._tenant_id = tenant_id
        self._settings = settings

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        credential = await self._resolver.resolve(
            tenant_id=self._tenant_id, provider=Provider.openai
        )
        client = openai.AsyncOpenAI(
            api_key=credential.secret["api_key"],
            base_url=self._settings.openai_base_url,
            timeout=httpx.Timeout(self._settings.llm_timeout_seconds),
            max_retries=self._settings.llm_max_retries,
        )
        try:
            response = await client.embeddings.create(
                model=OPENAI_MODEL.removeprefix("openai/"),
                input=list(texts),
                dimensions=DIMENSIONS,
            )
        except openai.OpenAIError as exc:
            # The SDK's message can quote the request; only the kind of failure leaves here.
            raise EmbeddingFailedError(
                f"the embedding call failed ({type(exc).__name__}); check the OpenAI key"
            ) from None
        finally:
            await client.close()
        ordered = sorted(response.data, key=lambda item: item.index)
        return [item.embedding for item in ordered]


class _Memoized:
    """An embedder that embeds each text once, for as long as its memo is kept."""

    def __init__(self, embedder: Embedder, memo: dict[tuple[str, str], list[float]]) -> None:
        self.model = embedder.model
        self._embedder = embedder
        self._memo = memo

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [text for text in dict.fromkeys(texts) if (self.model, text) not in self._memo]
        if missing:
            vectors = await self._embedder.embed(missing)
            for text, vector in zip(missing, vectors, strict=True):
                self._memo[self.model, text] = vector
        return [self._memo[self.model, text] for text in texts]


class Embedders:
    """The process's embedders: one local model shared by every tenant, OpenAI per tenant."""

    def __init__(
        self,
        *,
        resolver: CredentialResolver,
        settings: Settings,
        local: LocalEmbedder | None = None,
        memo: dict[tuple[str, str], list[float]] | None = None,
    ) -> None:
        self._resolver = resolver
        self._settings = settings
        self.local = local or LocalEmbedder(cache_dir=settings.model_cache_dir)
        self._memo = memo

    def for_run(self) -> Embedders:
        """The embedders one run uses: a text is embedded once per run (its request is the
        recall's query before the run, and what its outcome is found by after it)."""
        return Embedders(
            resolver=self._resolver, settings=self._settings, local=self.local, memo={}
        )

    def for_model(self, model: str, *, tenant_id: uuid.UUID) -> Embedder:
        embedder: Embedder
        if model == LOCAL_MODEL:
            embedder = self.local
        elif model == OPENAI_MODEL:
            embedder = OpenAIEmbedder(
                resolver=self._resolver, tenant_id=tenant_id, settings=self._settings
            )
        else:
            raise UnknownEmbeddingModelError(model)
        return embedder if self._memo is None else _Memoized(embedder, self._memo)
