"""One command grammar: every registered command with the shared grammar has its model, data,
output and run groups, and ``--out`` defaults to a new folder under ``runs/``."""

from __future__ import annotations

import argparse
import datetime
import importlib
from pathlib import Path

import pytest

from sansa_probe import evaluate, spatial_coherence, train
from sansa_probe.commands.grammar import NO_CHECKPOINT, UsageError, command_parser, dataset_option, new_run_folder, run_command
from sansa_probe.commands.registry import COMMANDS as REGISTRY
from sansa_probe.commands.registry import SHARED_GROUPS, get_command

COMMANDS = {c.name: importlib.import_module(c.main_module) for c in REGISTRY if c.groups}  # the commands on the shared grammar
PROBES = {c.name for c in REGISTRY if c.both_models}  # frozen SAM2 and SANSA in one run
READ_DATASETS = {c.name for c in REGISTRY if "data" in c.groups}
SHARED = {
    "model": ["--model", "--backbone", "--sam2-version", "--sam2-checkpoint", "--image-size", "--sam2-override", "--behaviour", "--setting", "--checkpoint", "--adapters"],
    "data": ["--dataset", "--fold", "--data-root", "--dataset-option"],
    "output": ["--out"],
    "run": ["--device", "--no-progress", "--max-image-pixels"],
}


def groups(parser: argparse.ArgumentParser) -> dict[str, dict[str, argparse.Action]]:
    """``{group title: {option: action}}`` of a parser."""
    return {group.title: {action.option_strings[-1]: action for action in group._group_actions}
            for group in parser._action_groups if group._group_actions}


def signature(action: argparse.Action) -> tuple:
    return (action.dest, repr(action.default), tuple(action.choices) if action.choices else None, action.type, action.nargs,
            type(action).__name__, action.required)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_the_shared_groups_and_nothing_else_in_them(name):
    found = groups(COMMANDS[name].build_parser())
    expected = get_command(name).groups
    assert set(SHARED) == set(SHARED_GROUPS) and set(found) & set(SHARED) == set(expected), f"{name}: shared groups"
    for title in expected:
        assert list(found.get(title, {})) == SHARED[title], f"{name}: group {title!r}"
    if name not in READ_DATASETS:
        assert "data" not in found and "--dataset" not in {o for g in found.values() for o in g}
    own = {option for title, options in found.items() if title not in SHARED for option in options}
    assert not own & {option for options in SHARED.values() for option in options}, f"{name}: a shared option outside its group"


def test_shared_options_mean_the_same_in_every_command():
    parsers = {name: groups(module.build_parser()) for name, module in COMMANDS.items()}
    for title, options in SHARED.items():
        for option in options:
            seen = {name: signature(found[title][option]) for name, found in parsers.items() if title in found}
            if option == "--adapters":  # the probes run both models unless told otherwise; the others adapt
                probe_values = {seen.pop(name) for name in PROBES}
                assert probe_values == {("adapters", "'both'", ("both", "on", "off"), None, None, "_StoreAction", False)}
            assert len(set(seen.values())) == 1, f"{option} differs: {seen}"
    model = parsers["segment"]["model"]
    assert model["--checkpoint"].default == NO_CHECKPOINT and model["--adapters"].default == "on"
    assert parsers["evaluate"]["data"]["--dataset"].default == "synthetic"
    assert parsers["pca"]["output"]["--out"].default is None


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_checkpoint_is_spelled_none_everywhere(name, tmp_path):
    parser = COMMANDS[name].build_parser()
    required = {"segment": ["--reference", "r.jpg", "--target", "t.jpg"], "annotate": ["--references", "refs.yaml"]}.get(name, [])
    assert parser.parse_args(required).checkpoint is None
    assert parser.parse_args([*required, "--checkpoint", "none", "--sam2-checkpoint", "none"]).sam2_checkpoint is None
    for spelling in ("None", "", "null"):
        with pytest.raises(UsageError, match="--checkpoint"):
            parser.parse_args([*required, "--checkpoint", spelling])
    existing = tmp_path / "adapters.pt"
    existing.write_bytes(b"")
    assert parser.parse_args([*required, "--checkpoint", str(existing)]).checkpoint == str(existing)


def test_dataset_options_are_parsed_one_way():
    assert dataset_option("images_per_class=4") == ("images_per_class", 4)
    assert dataset_option(" fine = true") == ("fine", True)
    assert dataset_option("name=cat dog") == ("name", "cat dog")
    assert dataset_option("sizes=[1, 2]") == ("sizes", [1, 2])
    with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
        dataset_option("colour")
    for name in READ_DATASETS:
        args = COMMANDS[name].build_parser().parse_args(["--dataset", "Pascal-Part", "--dataset-option", "a=1", "--dataset-option", "b=x"])
        assert args.dataset == "pascal_part" and dict(args.dataset_option) == {"a": 1, "b": "x"}


def test_bad_values_are_refused_by_the_parser_in_one_line(capsys):
    for argv, message in [
        (["--dataset", "cocco"], "argument --dataset: invalid choice: 'cocco'"),
        (["--fold", "-1"], "argument --fold: expected an integer >= 0, got '-1'"),
        (["--backbone", "hiera_xl"], "argument --backbone: invalid choice: 'hiera_xl'"),
        (["--image-size", "0"], "argument --image-size: expected an integer >= 1, got '0'"),
        (["--adapters", "both"], "argument --adapters: invalid choice: 'both'"),
    ]:
        assert evaluate.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("sansa_probe.evaluate: error: ") and message in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- --out


def test_new_run_folder_is_new_every_time(tmp_path):
    now = datetime.datetime(2026, 12, 2, 1, 2, 3)
    first = new_run_folder("pca", root=tmp_path, now=now)
    second = new_run_folder("pca", root=tmp_path, now=now)
    third = new_run_folder("pca", root=tmp_path, now=now)
    assert [p.name for p in (first, second, third)] == ["pca-20261202-010203", "pca-20261202-010203-1", "pca-20261202-010203-2"]
    assert all(p.is_dir() for p in (first, second, third))
    (first / "kept.txt").write_text("x")
    assert new_run_folder("pca", root=tmp_path, now=now).name == "pca-20261202-010203-3"
    assert (first / "kept.txt").read_text() == "x"


def _toy_parser() -> argparse.ArgumentParser:
    parser = command_parser("sansa_probe.toy", None)
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--out", default=None)
    return parser


def _toy_body(args: argparse.Namespace) -> int:
    if args.fail:
        raise ValueError("--fail: asked to")
    (Path(args.out) / "result.txt").write_text("done")
    return 0


def test_default_out_is_a_new_folder_printed_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    outs = []
    for _ in range(2):
        assert run_command(_toy_parser(), [], _toy_body, prog="sansa_probe.toy") == 0
        first_line = capsys.readouterr().out.splitlines()[0]  # a result: on stdout, so that `cmd > log.txt` keeps it
        assert first_line.startswith("out: runs/toy-")
        outs.append(tmp_path / first_line.removeprefix("out: "))
    assert outs[0] != outs[1] and all((out / "result.txt").read_text() == "done" for out in outs)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(out.name for out in outs)


def test_default_out_of_a_failed_run_is_removed_and_a_given_out_is_used_as_is(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert run_command(_toy_parser(), ["--fail"], _toy_body, prog="sansa_probe.toy") == 2
    assert "--fail: asked to" in capsys.readouterr().err and list((tmp_path / "runs").iterdir()) == []
    given = tmp_path / "mine"
    given.mkdir()
    assert run_command(_toy_parser(), ["--out", str(given)], _toy_body, prog="sansa_probe.toy") == 0
    assert (given / "result.txt").is_file() and "out:" not in capsys.readouterr().out


def test_default_out_is_refused_under_torchrun(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run_command(_toy_parser(), [], _toy_body, prog="sansa_probe.toy") == 2
    assert "--out: required under torchrun" in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_train_resume_needs_the_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train.main(["--resume"]) == 2
    assert "--resume: give --out" in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_list_layers_writes_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert spatial_coherence.main(["--list-layers", "--backbone", "hiera_t", "--image-size", "256", "--device", "cpu"]) == 0
    assert "image_encoder.trunk.blocks.0" in capsys.readouterr().out and not (tmp_path / "runs").exists()
