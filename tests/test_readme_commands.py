"""Every command the README shows is accepted, as written, by its command's parser.

The main job itself runs (small) in test_compare.py; here each README line is parsed, with file
checks relaxed (the README's files, e.g. ``dog.jpg``, are the user's), so a renamed or removed
option breaks this test instead of the user's first hour.
"""

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

from sansa_probe.commands import grammar as cli
from sansa_probe.commands.registry import COMMANDS, get_command
from sansa_probe.miniature.default import wants_miniature

README = Path(__file__).resolve().parents[1] / "README.md"
_COMMAND = re.compile(r"(?:python|torchrun[^-]*(?:--\S+ \S+ )*) ?-m (sansa_probe\.[a-z_]+)((?: (?!&&|#)\S+)*)")


def _readme_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for line in README.read_text().splitlines():
        for module, rest in _COMMAND.findall(line.split("  #")[0]):
            commands.append((module, shlex.split(rest.split("`")[0])))
    return commands


def test_the_readme_shows_every_command():
    assert {m for m, _ in _readme_commands()} == {c.module for c in COMMANDS}


def test_readme_command_lines_are_commands_not_listings():
    """A line such as ``python -m sansa_probe.projection / pca_rgb`` cannot be pasted: every
    ``python -m`` line of a code block is one whole command."""
    listings = [line for line in README.read_text().splitlines() if re.search(r"-m sansa_probe\.\S+ /", line)]
    assert listings == []


def _parser(module: str) -> argparse.ArgumentParser:
    return importlib.import_module(get_command(module.removeprefix("sansa_probe.")).main_module).build_parser()


@pytest.mark.parametrize("module,args", _readme_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40])
def test_readme_command_parses(module, args, monkeypatch):
    """Each option is spelled out (no abbreviation argparse would guess) and lands, as typed, in its destination."""
    monkeypatch.setattr(cli, "checkpoint_arg", lambda text: None if text == "none" else text)
    parser = _parser(module)
    parsed = parser.parse_args(args)
    actions = parser._option_string_actions
    for i, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        option = arg.split("=", 1)[0]
        assert option in actions, f"{module}: {option} is not an option of the command (abbreviated or removed)"
        action = actions[option]
        if isinstance(action, (argparse._StoreAction, argparse._AppendAction)) and action.nargs is None:
            typed = arg.split("=", 1)[1] if "=" in arg else args[i + 1]
            value = action.type(typed) if action.type else typed
            stored = getattr(parsed, action.dest)
            assert value in stored if isinstance(action, argparse._AppendAction) else stored == value, f"{module}: {arg} {typed}"


def _help_examples() -> list[tuple[str, list[str]]]:
    """The example command lines at the top of each command's ``--help`` (its module docstring),
    continuation lines joined; lines elided with ``...`` are left out."""
    examples = []
    for command in COMMANDS:
        text = re.sub(r"\s*\\\n\s*", " ", importlib.import_module(command.main_module).__doc__)
        for line in text.splitlines():
            if not line.lstrip().startswith(("python -m", "torchrun")):  # an example line, not a mention in prose
                continue
            for module, rest in _COMMAND.findall(line.split("  #")[0]):
                if "..." not in rest:
                    examples.append((module, shlex.split(rest)))
    return examples


def test_every_command_shows_examples_in_its_help():
    assert {m for m, _ in _help_examples()} == {c.module for c in COMMANDS}


@pytest.mark.parametrize("module,args", _help_examples(), ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40])
def test_help_example_parses(module, args, monkeypatch):
    test_readme_command_parses(module, args, monkeypatch)


def test_offline_help_examples_need_no_download():
    """An example run on the procedural benchmark or the synthetic pseudo-videos either uses the
    shipped miniature (``--dataset synthetic`` with no SAM2 option) or says ``--sam2-checkpoint none``:
    none of them downloads SAM2."""
    for module, args in _help_examples():
        if "model" not in get_command(module.removeprefix("sansa_probe.")).groups:
            continue  # builds no model from the shared options
        parser = _parser(module)
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
