"""The notebooks: regenerated exactly by make_notebooks.py, and each one executes headless on the
embedded default (the shipped miniature, the procedural benchmark) at small settings."""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "notebooks"

# The smallest settings, through the environment (as a user would: SANSA_NB_<NAME>); names a
# notebook does not have are ignored by it.
SMALL = {
    "EPISODES": "16",
    "IMAGES_PER_CLASS": "4",
    "DATASET_OPTIONS": '{"image_size": 96, "images_per_class": 6}',
    "EPOCHS": "2",
    "N_IMAGES": "2",
    "MAX_PAIRS": "2",
    "VIDEOS": "2",
    "FRAMES_PER_VIDEO": "3",
    "VIDEO_SIZE": "96",
    "TARGETS_SHOWN": "2",
    "TABLES": '["table1"]',
    "ENCODERS": "sam2,sansa,timm:test_vit",  # timm's 0.3 M-parameter test ViT; offline (as here) with random weights
}


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", FOLDER / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _make_notebooks()
NAMES = sorted(MAKE.NOTEBOOKS)


def test_committed_notebooks_are_what_make_notebooks_writes():
    committed = sorted(p.name for p in FOLDER.glob("*.ipynb"))
    assert committed == NAMES, "notebooks/ holds a notebook make_notebooks.py does not write (or misses one)"
    stale = [name for name in NAMES if (FOLDER / name).read_text(encoding="utf-8") != MAKE.render(MAKE.NOTEBOOKS[name])]
    assert not stale, f"run python notebooks/make_notebooks.py: {stale} differ from what it writes"
    assert MAKE.main(["--check"]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean_with_a_parameters_cell_first(name):
    nb = nbformat.read(FOLDER / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert code[0].source.rstrip().endswith("globals().update(from_environment(globals(), prefix=\"SANSA_NB_\"))")
    assert all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.parametrize("name", NAMES)
def test_papermill_sees_every_parameter(name):
    from papermill.inspection import inspect_notebook

    cell = next(c for c in nbformat.read(FOLDER / name, as_version=4).cells if c.cell_type == "code")
    assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets]
    assert assigned and all(n.isupper() for n in assigned)
    parameters = inspect_notebook(str(FOLDER / name))
    assert list(parameters) == assigned  # the import and the override line are not taken for parameters
    assert not [p for p in parameters.values() if "from_environment" in p["default"]]


def _environment(monkeypatch, **extra: str) -> None:
    """The kernel inherits this process's environment: the repository under test first on its path."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    for name, value in {**SMALL, **extra}.items():
        monkeypatch.setenv(f"SANSA_NB_{name}", value)


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _text(outputs: list[dict], stream: str) -> str:
    return "".join(o["text"] for o in outputs if o.get("output_type") == "stream" and o.get("name") == stream)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_on_the_embedded_default(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    _environment(monkeypatch)
    if name == "encoders.ipynb":  # offline for certain: no timm weights on disk or on the network
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    nb = nbformat.read(FOLDER / name, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=240, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    stdout, stderr = _text(outputs, "stdout"), _text(outputs, "stderr")
    assert "parameters from the environment:" in stdout  # the SANSA_NB_ overrides reached the kernel
    assert "the miniature SAM2 pretrained here" in stdout  # the embedded default, named in the identity line
    if name == "encoders.ipynb":  # the timm encoder without its weights runs with random ones, and says so
        assert "note: timm:test_vit: its weights are not on disk" in stdout and "timm:test_vit:random runs instead" in stdout
        assert "warning: timm:test_vit:random has RANDOM weights: a smoke test, meaningless for results" in stdout
        assert "SAM2 has RANDOM weights" not in stdout
    else:
        assert "RANDOM" not in stdout
    assert any("image/png" in o.get("data", {}) for o in outputs)  # a figure is shown
    assert "%|" not in stderr and "it/s]" not in stderr, "progress bars printed to stderr"


@pytest.mark.slow
def test_papermill_parameters_win_over_the_environment(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")

    _environment(monkeypatch, PROMPT="point", SHOTS="1")
    out = tmp_path / "quickstart.ipynb"
    papermill.execute_notebook(str(FOLDER / "quickstart.ipynb"), str(out), parameters={"PROMPT": "box", "TARGETS_SHOWN": 1},
                               kernel_name="python3", cwd=str(tmp_path), progress_bar=False)  # fmt: skip
    stdout = _text(_outputs(nbformat.read(out, as_version=4)), "stdout")
    assert "1 reference(s)" in stdout  # SHOTS from the environment
    assert "prompted by (box)" in stdout  # PROMPT from papermill, not the environment's point
    assert "1 target(s)" in stdout
