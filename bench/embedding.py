"""The local embedding model: opshub's ONNX Runtime graph beside sentence-transformers (torch).

Both run all-MiniLM-L6-v2 from the same weights with one compute thread each (how a worker runs
it, beside its crews). Each backend runs in a process of its own, one after the other:
- one sentence at a time (a run's recall query and its outcome): median latency and CPU;
- batches of 64 (a bulk import): sentences/s;
- the process's peak RSS with the model loaded;
and the largest difference between the two backends' vectors for the same sentences.

    .venv/bin/python bench/embedding.py [--single 300] [--batch-rounds 5]

Results go to bench/results/embedding.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "embedding.json"
PRODUCTS = ("trail tent", "enamel mug", "desk lamp", "wool scarf", "rain jacket", "camp stove")


def sentences(count: int) -> list[str]:
    return [
        f"Customer {i} asked whether the {PRODUCTS[i % 6]} ships before the spring campaign "
        f"ends, and what the {PRODUCTS[(i + 1) % 6]} costs with voucher SPRING{i % 9}."
        for i in range(count)
    ]


def load(backend: str) -> Any:
    """An ``encode(texts) -> vectors`` callable for the backend, its model loaded."""
    if backend == "onnx":
        from opshub.config import get_settings
        from opshub.memory.minilm import MiniLM

        model = MiniLM(cache_dir=get_settings().model_cache_dir)
        return lambda texts: model.encode(texts, batch_size=64)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    from opshub.memory.minilm import weights_dir

    torch.set_num_threads(1)
    reference = SentenceTransformer(str(weights_dir()), device="cpu")
    return lambda texts: reference.encode(
        texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
    ).tolist()


def measure(backend: str, single: int, batch_rounds: int) -> dict[str, Any]:
    began = time.perf_counter()
    encode = load(backend)
    loaded_s = time.perf_counter() - began
    texts = sentences(max(single, 640))
    encode(texts[:64])  # warm-up
    wall, cpu = [], []
    for text in texts[:single]:
        w, c = time.perf_counter(), time.process_time()
        encode([text])
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    rates = []
    for _ in range(batch_rounds):
        w = time.perf_counter()
        encode(texts[:640])
        rates.append(640 / (time.perf_counter() - w))
    return {
        "load_s": round(loaded_s, 2),
        "one_sentence_median_ms": round(statistics.median(wall) * 1000, 2),
        "one_sentence_cpu_median_ms": round(statistics.median(cpu) * 1000, 2),
        "batch_64_sentences_per_s": round(statistics.median(rates), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "vectors": encode(texts[:32]),
    }


def in_subprocess(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--backend", backend, "--single", str(args.single)]
    command += ["--batch-rounds", str(args.batch_rounds)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--batch-rounds", type=int, default=5)
    parser.add_argument("--backend", choices=("onnx", "sentence-transformers"))
    args = parser.parse_args()
    if args.backend:
        print(json.dumps(measure(args.backend, args.single, args.batch_rounds)))
        return
    onnx = in_subprocess("onnx", args)
    reference = in_subprocess("sentence-transformers", args)
    difference = max(
        abs(a - b)
        for va, vb in zip(onnx.pop("vectors"), reference.pop("vectors"), strict=True)
        for a, b in zip(va, vb, strict=True)
    )
    report = {
        "benchmark": "embedding",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "model": "all-MiniLM-L6-v2, one compute thread per backend",
        "onnx_runtime": onnx,
        "sentence_transformers": reference,
        "ratios": {
            "one_sentence_latency": round(
                reference["one_sentence_median_ms"] / onnx["one_sentence_median_ms"], 2
            ),
            "one_sentence_cpu": round(
                reference["one_sentence_cpu_median_ms"] / onnx["one_sentence_cpu_median_ms"], 2
            ),
            "batch_throughput": round(
                onnx["batch_64_sentences_per_s"] / reference["batch_64_sentences_per_s"], 2
            ),
        },
        "max_abs_vector_difference": difference,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
