"""Every command the README shows is accepted, as written, by its command's parser.

The main job itself runs (small) in test_compare.py; here each README line is parsed, with file
checks relaxed (the README's files, e.g. ``dog.jpg``, are the user's), so a renamed or removed
option breaks this test instead of the user's first hour.
"""

import importlib
import re
import shlex
from pathlib import Path

import pytest

from sansa_probe.commands import grammar as cli

README = Path(__file__).resolve().parents[1] / "README.md"
_COMMAND = re.compile(r"(?:python|torchrun[^-]*(?:--\S+ \S+ )*) ?-m (sansa_probe\.[a-z_]+)((?: (?!&&|#)\S+)*)")


def _readme_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for line in README.read_text().splitlines():
        for module, rest in _COMMAND.findall(line.split("  #")[0]):
            commands.append((module, shlex.split(rest.split("`")[0])))
    return commands


def test_the_readme_shows_commands():
    modules = {m for m, _ in _readme_commands()}
    probes = {f"sansa_probe.{name}" for name in ("pca", "projection", "pca_rgb", "linear_probe", "part_matching", "spatial_coherence")}
    assert {"sansa_probe.compare", "sansa_probe.train", "sansa_probe.evaluate", "sansa_probe.segment", "sansa_probe.annotate"} | probes <= modules


def test_readme_command_lines_are_commands_not_listings():
    """A line such as ``python -m sansa_probe.projection / pca_rgb`` cannot be pasted: every
    ``python -m`` line of a code block is one whole command."""
    listings = [line for line in README.read_text().splitlines() if re.search(r"-m sansa_probe\.\S+ /", line)]
    assert listings == []


@pytest.mark.parametrize("module,args", _readme_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40])
def test_readme_command_parses(module, args, monkeypatch):
    monkeypatch.setattr(cli, "checkpoint_arg", lambda text: None if text == "none" else text)
    command = importlib.import_module(module if module != "sansa_probe.miniature" else "sansa_probe.miniature.__main__")
    if not hasattr(command, "build_parser"):
        pytest.skip(f"{module} has no build_parser")
    parser = command.build_parser()
    parsed = parser.parse_args(args)
    assert parsed is not None


COMMANDS = ("pca", "projection", "pca_rgb", "linear_probe", "part_matching", "spatial_coherence", "segment", "annotate", "evaluate",
            "compare", "train")


def _help_examples() -> list[tuple[str, list[str]]]:
    """The example command lines at the top of each command's ``--help`` (its module docstring),
    continuation lines joined; lines elided with ``...`` are left out."""
    examples = []
    for name in COMMANDS:
        text = re.sub(r"\s*\\\n\s*", " ", importlib.import_module(f"sansa_probe.{name}").__doc__)
        for line in text.splitlines():
            if not line.lstrip().startswith(("python -m", "torchrun")):  # an example line, not a mention in prose
                continue
            for module, rest in _COMMAND.findall(line.split("  #")[0]):
                if "..." not in rest:
                    examples.append((module, shlex.split(rest)))
    return examples


def test_every_command_shows_examples_in_its_help():
    assert {m.rsplit(".", 1)[-1] for m, _ in _help_examples()} == set(COMMANDS)


@pytest.mark.parametrize("module,args", _help_examples(), ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40])
def test_help_example_parses(module, args, monkeypatch):
    test_readme_command_parses(module, args, monkeypatch)


def test_offline_help_examples_need_no_download():
    """An example run on the procedural benchmark or the synthetic pseudo-videos either uses the
    shipped miniature (``--dataset synthetic`` with no SAM2 option) or says ``--sam2-checkpoint none``:
    none of them downloads SAM2."""
    from sansa_probe.miniature.default import wants_miniature

    for module, args in _help_examples():
        parser = importlib.import_module(module).build_parser()
        if module.endswith(("segment", "annotate", "compare")) and "--from-runs" in args:
            continue
        try:
            parsed = parser.parse_args(args)
        except cli.UsageError:
            continue
        data = getattr(parsed, "data_root", None) is None and getattr(parsed, "frames", None) is None and getattr(parsed, "dataset", "synthetic") == "synthetic"
        offline = not getattr(parsed, "image", None) and not getattr(parsed, "reference", None) and not getattr(parsed, "references", None) and data
        if offline:
            assert wants_miniature(parsed) or parsed.sam2_checkpoint is None, f"{module} {' '.join(args)} would download SAM2"
