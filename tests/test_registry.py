"""The command registry is the one list of commands: the package's top level, ``python -m
sansa_probe``, pyproject's scripts and docs/DESIGN.md all agree with it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sansa_probe import __main__ as listing
from sansa_probe.commands.registry import COMMANDS, SHARED_GROUPS, command_lines, get_command, markdown_table

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_scripts_are_the_registry_s():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {c.script: c.entry_point for c in COMMANDS if c.script}


def test_the_top_of_the_package_is_the_commands():
    top = {p.stem for p in (REPO / "sansa_probe").glob("*.py")} - {"__init__", "__main__"}
    packages = {p.parent.name for p in (REPO / "sansa_probe").glob("*/__main__.py")}
    assert top | packages == {c.name for c in COMMANDS}
    assert packages == {c.name for c in COMMANDS if c.package}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_has_main_and_its_parser(command):
    module = importlib.import_module(command.main_module)
    assert callable(module.main) and module.build_parser().prog == f"python -m {command.module}"
    assert set(command.groups) <= set(SHARED_GROUPS)


def test_python_m_sansa_probe_lists_every_command_once_without_importing_torch():
    done = subprocess.run([sys.executable, "-c", "import sys; from sansa_probe.__main__ import main; code = main([]); "
                           "print('torch' in sys.modules); sys.exit(code)"], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    *lines, imported_torch = done.stdout.splitlines()
    assert imported_torch == "False"
    assert lines[1:] == [f"  {line}" for line in command_lines()]
    for command in COMMANDS:
        assert sum(f"python -m {command.module} " in line for line in lines) == 1
        assert command.summary in lines[1 + COMMANDS.index(command)]


def test_python_m_sansa_probe_refuses_arguments(capsys):
    assert listing.main(["compare"]) == 2
    assert "takes no arguments" in capsys.readouterr().err


def test_docs_show_the_registry_s_table():
    assert markdown_table() in (REPO / "docs" / "DESIGN.md").read_text(), "docs/DESIGN.md: paste commands.registry.markdown_table()"


def test_get_command_names_the_known_ones():
    assert get_command("pca").script == "sansa-pca"
    with pytest.raises(ValueError, match="expected one of segment, annotate"):
        get_command("pcaa")
