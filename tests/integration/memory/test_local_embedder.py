"""The local model: the vectors sentence-transformers gives; batched, concurrent requests get the
vectors they would get alone."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Sequence

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from opshub.config import get_settings
from opshub.memory.embedders import DIMENSIONS, LOCAL_MODEL, Embedders, LocalEmbedder
from opshub.memory.minilm import MAX_TOKENS, weights_dir

SENTENCES = [f"Note {n}: the {item} sells best in {month}." for n, (item, month) in enumerate(
    (item, month) for item in ("tent", "mug", "lamp") for month in ("May", "June", "July")
)]  # fmt: skip


def local_embedder() -> LocalEmbedder:
    return LocalEmbedder(cache_dir=get_settings().model_cache_dir)


async def test_vectors_match_sentence_transformers_so_stored_memories_stay_comparable() -> None:
    texts = [
        *SENTENCES,
        "",
        "Ünïcödé, émojis 🚀 and   odd   spacing\n\ttoo",
        " ".join(f"word{n}" for n in range(MAX_TOKENS * 2)),  # cut at MAX_TOKENS like the reference
    ]
    reference = SentenceTransformer(str(weights_dir()), device="cpu")
    expected = reference.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    got = await local_embedder().embed(texts)
    np.testing.assert_allclose(np.array(got), expected, atol=1e-5)


async def test_concurrent_requests_get_their_own_unit_vectors() -> None:
    embedder = local_embedder()
    alone = [await embedder.embed([text]) for text in SENTENCES[:3]]
    together = await asyncio.gather(
        *(embedder.embed([text]) for text in SENTENCES),
        embedder.embed(SENTENCES[:2]),
    )
    for single, [vector] in zip(alone, together[:3], strict=True):
        assert single[0] == pytest.approx(vector, abs=1e-5)
    assert together[-1][0] == pytest.approx(together[0][0], abs=1e-5)
    assert together[-1][1] == pytest.approx(together[1][0], abs=1e-5)
    for [vector] in together[:-1]:
        assert len(vector) == DIMENSIONS
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-4)


async def test_a_failed_batch_fails_its_callers_and_the_next_one_works(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    embedder = local_embedder()

    def broken(_texts: list[str]) -> list[list[float]]:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(embedder, "encode", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        await asyncio.gather(embedder.embed(["a"]), embedder.embed(["b"]))
    monkeypatch.undo()
    [vector] = await embedder.embed(["a"])
    assert len(vector) == DIMENSIONS


async def test_a_runs_embedders_embed_each_text_once(embedders: Embedders) -> None:
    """A run's request is embedded for the recall before it and keys its outcome after it: the
    model computes it once per run, and a new run computes it again."""
    passes: list[list[str]] = []
    local = embedders.local
    model_embed = local.embed

    async def counted(texts: Sequence[str]) -> list[list[float]]:
        passes.append(list(texts))
        return await model_embed(texts)

    run = embedders.for_run()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "embed", counted)
        embedder = run.for_model(LOCAL_MODEL, tenant_id=uuid.uuid4())
        [first] = await embedder.embed(["How did the spring campaign do?"])
        again, other = await embedder.embed(
            ["How did the spring campaign do?", "What does the tent cost?"]
        )
        await (
            embedders.for_run()
            .for_model(LOCAL_MODEL, tenant_id=uuid.uuid4())
            .embed(["How did the spring campaign do?"])
        )
    assert passes == [
        ["How did the spring campaign do?"],
        ["What does the tent cost?"],
        ["How did the spring campaign do?"],
    ]
    assert again == first
    assert math.isclose(float(np.linalg.norm(other)), 1.0, abs_tol=1e-5)
