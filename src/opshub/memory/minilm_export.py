"""Export all-MiniLM-L6-v2 to ONNX: ``python -m opshub.memory.minilm_export <folder>``.

Run by ``minilm.ensure_graph`` in a process of its own: torch and transformers load here only.
The folder gets the graph and the tokenizer, all the hub needs at run time.
The graph takes token ids, attention mask and token types and returns the mean-pooled,
L2-normalised sentence vector, as sentence-transformers computes it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel

from opshub.memory.minilm import GRAPH_FILE, TOKENIZER_FILE, weights_dir


class _SentenceVector(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def export(folder: Path) -> None:
    _replace(weights_dir() / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    path = folder / GRAPH_FILE
    model = _SentenceVector(AutoModel.from_pretrained(str(weights_dir()))).eval()
    example = torch.ones((2, 8), dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "texts", 1: "tokens"} for name in names}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as part:
        partial = Path(part.name)
    try:
        torch.onnx.export(
            model,
            (example, example, torch.zeros_like(example)),
            str(partial),
            input_names=names,
            output_names=["sentence_vector"],
            dynamic_axes={**axes, "sentence_vector": {0: "texts"}},
            opset_version=17,
            dynamo=False,
        )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _replace(source: Path, target: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        partial = Path(part.name)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


if __name__ == "__main__":
    export(Path(sys.argv[1]))
