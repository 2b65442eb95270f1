"""``sansa_probe.evaluate`` on the synthetic benchmark with the tiny model: files, determinism,
frozen-SAM2 equivalence, sharding, prompts, negative prompts, all folds, errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_tiny_model, randomized_adapters

from sansa_probe import evaluate
from sansa_probe.commands import benchmark
from sansa_probe.evaluation import episodes as episode_loop
from sansa_probe.data import EpisodeSampler
from sansa_probe.evaluation.negatives import choose_semantic_negatives, next_negative_click
from sansa_probe.prompts import PROMPT_TYPES, Points

TINY_ARGS = ["--backbone", "hiera_t", "--image-size", "256", "--sam2-checkpoint", "none", "--device", "cpu"]
DATA = dict(image_size=96, images_per_class=4)
DATA_ARGS = ["--dataset", "synthetic", "--dataset-option", "image_size=96", "--dataset-option", "images_per_class=4",
             "--num-workers", "0", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the CPUs here are shared, and oversubscribed threads slow every forward
    down severalfold; it also gives the arithmetic of each single-threaded torchrun rank."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_sampler(fold: int = 0, shots: int = 1, episodes: int = 3, seed: int = 0) -> EpisodeSampler:
    return EpisodeSampler("synthetic", fold=fold, shots=shots, n_episodes=episodes, seed=seed, **DATA)


@pytest.fixture(scope="module")
def evaluated(tiny_model):
    """``(metric, rows)`` of ``make_sampler()`` (3 episodes, mask prompts), randomized adapters (seed 0) on."""
    with randomized_adapters(tiny_model):
        return episode_loop.evaluate_episodes(tiny_model, make_sampler())


@pytest.fixture
def baseline(evaluated) -> pd.DataFrame:
    return evaluated[1]


@pytest.fixture
def use_tiny_model(tiny_model, monkeypatch):
    """The command builds the session model (loading ``adapters=`` into it, as load_sansa would)."""

    def build(args, *, adapters=None, device=None):
        if adapters is not None:
            tiny_model.load_adapters(adapters)
        return tiny_model

    monkeypatch.setattr(benchmark, "model_from_args", build)
    return tiny_model


@pytest.fixture
def no_model(monkeypatch):
    def build(args, **kwargs):
        raise AssertionError("bad arguments must be reported before the model is built")

    monkeypatch.setattr(benchmark, "model_from_args", build)


# ----------------------------------------------------------------------------- outputs


def test_command_writes_tidy_results_episode_rows_and_summary(use_tiny_model, tmp_path):
    checkpoint = tmp_path / "adapters.pt"
    use_tiny_model.save_adapters(checkpoint)
    out = tmp_path / "out"
    code = evaluate.main([*DATA_ARGS, "--episodes", "2", "--checkpoint", str(checkpoint), "--out", str(out), *TINY_ARGS])
    assert code == 0
    # no temporary files left; the manifest records what the run wrote (issue 22)
    assert sorted(p.name for p in out.iterdir()) == ["episodes.csv", "results.csv", "sansa-manifest.json", "summary.json"]
    assert set(json.loads((out / "sansa-manifest.json").read_text())["files"]) == {"episodes.csv", "results.csv", "summary.json"}

    results = pd.read_csv(out / "results.csv")
    labels = ["dataset", "shots", "prompt", "adapters", "protocol", "negative_clicks", "semantic_negatives", "model", "fold"]
    assert list(results.columns) == [*labels, "metric", "class_id", "class_name", "value"]
    assert results["model"].str.contains("SAM2 weights: RANDOM").all()  # every row says what produced it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identity"]["sam2_weights"] == "random" and summary["identity"]["model_run"] == "SANSA (adapters on)"
    assert any("RANDOM" in w for w in summary["warnings"])
    assert (results["dataset"] == "synthetic").all() and (results["adapters"] == "on").all()
    summary_rows = results[results["metric"] != "iou"].set_index("metric")["value"]
    assert summary_rows["n_episodes"] == 2
    per_class = results[results["metric"] == "iou"]
    assert sorted(per_class["class_id"]) == list(range(0, 64, 4))  # every class of fold 0
    assert per_class["class_name"].str.contains("-").all()

    episodes = pd.read_csv(out / "episodes.csv")
    assert list(episodes["episode"]) == [0, 1]
    assert list(episodes.columns) == [*labels, *episode_loop.EPISODE_COLUMNS]
    assert (episodes["reference_ids"].str.count(";") == 0).all() and episodes["negative_ids"].isna().all()
    # mIoU from the episode rows, HSNet's way: per class sum I / sum U, mean over all 16 fold classes
    sums = episodes.groupby("class_id")[["intersection", "union"]].sum()
    expected = 100.0 * (sums["intersection"] / sums["union"].clip(lower=1)).sum() / 16
    assert summary_rows["miou"] == pytest.approx(expected)
    assert summary_rows["n_unsampled"] == 16 - episodes["class_id"].nunique()
    pooled = episodes[["intersection", "union", "bg_intersection", "bg_union"]].sum()
    fb = 50.0 * (pooled["intersection"] / pooled["union"] + pooled["bg_intersection"] / pooled["bg_union"])
    assert summary_rows["fb_iou"] == pytest.approx(fb)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoints"] == [{"path": str(checkpoint.resolve()), "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(), "folds": [0]}]
    assert set(summary["versions"]) == {"python", "torch", "sam2", "sansa_probe"}
    assert summary["versions"]["sam2"] == "1.1.0"
    assert summary["seed"] == 0 and summary["episodes"] == {"0": 2} and summary["device"]["type"] == "cpu"
    assert summary["results"]["folds"]["0"]["miou"] == pytest.approx(summary_rows["miou"])
    assert summary["model"]["backbone"] == "hiera_t" and summary["config"]["prompt"] == "mask"
    assert summary["seconds"] > 0 and summary["started"]


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "sansa_probe.evaluate", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--negative-clicks" in result.stdout and "--all-folds" in result.stdout and "coco20i" in result.stdout


# ----------------------------------------------------------------------------- invariants of the core


def test_same_seed_same_numbers_with_any_number_of_workers(tiny_model, baseline):
    with randomized_adapters(tiny_model):
        metric, rows = episode_loop.evaluate_episodes(tiny_model, make_sampler(), num_workers=2)
    pd.testing.assert_frame_equal(rows, baseline)
    assert list(rows.columns) == episode_loop.EPISODE_COLUMNS and list(rows["episode"]) == [0, 1, 2]
    assert metric.n_episodes == 3 and rows["score"].between(-1, 2).all()


def test_adapters_off_is_exactly_a_model_without_adapters(tiny_model, use_tiny_model, baseline, tmp_path):
    plain = build_tiny_model(stages=())
    assert plain.num_adapter_parameters() == 0
    sam_state = {k: v for k, v in tiny_model.sam.state_dict().items() if k not in set(tiny_model.adapter_names)}
    plain.sam.load_state_dict(sam_state, strict=True)
    _, expected = episode_loop.evaluate_episodes(plain, make_sampler())
    assert not baseline["pred_area"].equals(expected["pred_area"])  # the randomized adapters do act when on

    with randomized_adapters(tiny_model):
        out = tmp_path / "off"
        assert evaluate.main([*DATA_ARGS, "--episodes", "3", "--adapters", "off", "--out", str(out), *TINY_ARGS]) == 0
        assert tiny_model.adapters_enabled  # the command restores the switch
    cli = pd.read_csv(out / "episodes.csv")
    assert (cli["adapters"] == "off").all()
    for column in ("intersection", "union", "pred_area"):
        assert cli[column].tolist() == expected[column].tolist()


def test_shards_merge_to_the_single_process_result(tiny_model, evaluated):
    single, baseline = evaluated
    sampler = make_sampler()
    with randomized_adapters(tiny_model):
        shards = [episode_loop.evaluate_episodes(tiny_model, sampler, rank=r, world_size=2) for r in (1, 0)]
        idle = episode_loop.evaluate_episodes(tiny_model, sampler, rank=3, world_size=4)  # more ranks than episodes
    assert [list(rows["episode"]) for _, rows in shards] == [[1], [0, 2]] and len(idle[1]) == 0
    metric, rows = episode_loop.merge_results([*shards, idle])
    pd.testing.assert_frame_equal(rows, baseline)
    merged, expected = metric.state_dict(), single.state_dict()
    assert all(merged[key] == expected[key] for key in ("class_ids", "intersection", "union", "n_updates"))
    with pytest.warns(UserWarning, match="never sampled"):
        assert metric.compute()["miou"] == single.compute()["miou"]
    with pytest.raises(ValueError, match="two shards"):
        episode_loop.merge_results([shards[0], shards[0]])


@pytest.mark.slow
def test_torchrun_with_two_gloo_processes_equals_one_process(tmp_path):
    args = [*DATA_ARGS, "--episodes", "2", "--prompt", "scribble", *TINY_ARGS]
    assert torch.get_num_threads() == 1  # the same arithmetic as each rank (OMP_NUM_THREADS=1)
    assert evaluate.main([*args, "--out", str(tmp_path / "one")]) == 0  # the real builder, seeded random SAM2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "sansa_probe.evaluate", *args, "--out", str(tmp_path / "two")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=170, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("episodes.csv", "results.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "two" / name), pd.read_csv(tmp_path / "one" / name))
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["device"]["world_size"] == 2 and summary["episodes"] == {"0": 2}


# ----------------------------------------------------------------------------- prompts and negatives


def test_every_prompt_type_runs_and_prompts_are_seeded(tiny_model):
    data = make_sampler(shots=2).load(0)
    points = episode_loop.episode_prompts(data, "point", seed=3)
    assert all(isinstance(p, Points) and len(p.coords) == 20 for p in points)
    again = episode_loop.episode_prompts(data, "point", seed=3)
    assert all(np.array_equal(a.coords, b.coords) for a, b in zip(points, again))
    assert not np.array_equal(points[0].coords, points[1].coords)  # shot index enters the seed
    areas = {}
    with randomized_adapters(tiny_model):
        for kind in PROMPT_TYPES:
            metric, rows = episode_loop.evaluate_episodes(tiny_model, make_sampler(shots=2, episodes=1), prompt=kind)
            assert metric.n_episodes == 1 and rows["score"].notna().all()
            assert (rows["reference_ids"].str.count(";") == 1).all()
            areas[kind] = tuple(rows["pred_area"])
    assert len(set(areas.values())) > 1
    with pytest.raises(ValueError, match="prompt 'lasso'"):
        episode_loop.evaluate_episodes(tiny_model, make_sampler(), prompt="lasso")


def test_negative_click_goes_to_the_interior_of_the_largest_false_positive():
    target = np.zeros((40, 50), bool)
    target[5:15, 5:15] = True
    pred = target.copy()
    assert next_negative_click(pred, target) is None
    pred[20:31, 30:41] = True  # 11x11 false positive, centre (row 25, col 35)
    pred[0:3, 40:43] = True  # a smaller one
    assert next_negative_click(pred, target) == (35.0, 25.0)
    ignore = np.zeros_like(target)
    ignore[20:31, 30:41] = True
    assert next_negative_click(pred, target, ignore) == (41.0, 1.0)  # the border counts as boundary
    with pytest.raises(ValueError, match="pred: shape"):
        next_negative_click(pred[:10], target)


def test_negative_clicks_correct_the_prediction_without_re_encoding(tiny_model, baseline):
    plain = baseline
    with randomized_adapters(tiny_model):
        calls = []
        original = tiny_model.encode_images
        tiny_model.encode_images = lambda x: calls.append(x.shape[0]) or original(x)
        try:
            _, clicked = episode_loop.evaluate_episodes(tiny_model, make_sampler(), negative_clicks=2)
        finally:
            del tiny_model.encode_images
    # per episode: the reference memory (SansaModel.reference_memory), then the target, each encoded
    # once; the clicks reuse the target's encoding
    assert calls == [1, 1] * 3
    np.testing.assert_allclose(clicked["iou_before_clicks"], plain["iou"])
    has_false_positive = plain["pred_area"] > plain["intersection"]
    assert (clicked.loc[has_false_positive, "clicks"] > 0).all()
    assert (clicked["clicks"] <= 2).all()
    assert not clicked["pred_area"].equals(plain["pred_area"])


def test_semantic_negatives_come_from_other_classes_and_change_predictions(tiny_model, baseline):
    sampler, plain = make_sampler(), baseline
    with randomized_adapters(tiny_model):
        _, negative = episode_loop.evaluate_episodes(tiny_model, sampler, semantic_negatives=2)
    for row in negative.itertuples():
        ids = row.negative_ids.split(";")
        assert len(set(ids)) == 2 and row.target_id not in ids and row.reference_ids not in ids
        for image_id in ids:
            assert f"-c{row.class_id:02d}-" not in image_id
            assert not sampler.source.load_mask(image_id, row.class_id).any()
    assert not negative["pred_area"].equals(plain["pred_area"])
    prepared = episode_loop.prepare_episode(sampler, 0, prompt="mask", seed=0, image_size=256, semantic_negatives=2)
    again = episode_loop.prepare_episode(make_sampler(), 0, prompt="mask", seed=0, image_size=256, semantic_negatives=2)
    assert prepared.negative_ids == again.negative_ids == tuple(negative.loc[0, "negative_ids"].split(";"))
    assert torch.equal(prepared.references.frames, again.references.frames) and torch.equal(prepared.target, again.target)
    assert prepared.references.frames.shape == (3, 3, 256, 256)  # reference, 2 negatives: one encoder batch
    assert prepared.target.shape == (1, 3, 256, 256)
    assert prepared.references.num_shots == 1 and prepared.references.num_negatives == 2
    assert all(p.mask_inputs.sum() == 0 for p in prepared.references.prompts[1:])
    with pytest.raises(ValueError, match="at least two classes"):
        choose_semantic_negatives(count=1, class_id=0, classes=[0], images_of=lambda c: ["a"], exclude=[], seed=0, episode=0)


# ----------------------------------------------------------------------------- all folds


def test_all_folds_reports_the_mean_with_per_fold_checkpoints(use_tiny_model, tmp_path):
    for fold in range(4):
        with randomized_adapters(use_tiny_model, seed=fold):
            use_tiny_model.save_adapters(tmp_path / f"fold{fold}.pt")
    out = tmp_path / "all"
    with randomized_adapters(use_tiny_model, seed=99):  # restores the session model after the per-fold loads
        code = evaluate.main([*DATA_ARGS, "--all-folds", "--episodes", "1", "--checkpoint", str(tmp_path / "fold{fold}.pt"),
                              "--out", str(out), *TINY_ARGS])  # fmt: skip
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    miou = results[results["metric"] == "miou"].set_index("fold")["value"]
    assert list(miou.index) == ["0", "1", "2", "3", "mean"]
    assert miou["mean"] == pytest.approx(miou[["0", "1", "2", "3"]].mean())
    summary = json.loads((out / "summary.json").read_text())
    assert [c["folds"] for c in summary["checkpoints"]] == [[0], [1], [2], [3]]
    assert len({c["sha256"] for c in summary["checkpoints"]}) == 4
    assert summary["results"]["mean"]["miou"] == pytest.approx(miou["mean"])
    episodes = pd.read_csv(out / "episodes.csv")
    assert episodes.groupby("fold").size().tolist() == [1, 1, 1, 1]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "nope"], "argument --dataset: invalid choice: 'nope' (choose from 'ade20k', 'coco20i'"),
        (["--fold", "4"], "--fold 4 is out of range for synthetic: expected 0..3"),
        (["--shots", "0"], "argument --shots: expected an integer >= 1, got '0'"),
        (["--prompt", "lasso"], "argument --prompt: invalid choice: 'lasso' (choose from 'mask', 'point', 'box', 'scribble')"),
        (["--episodes", "0"], "argument --episodes: expected an integer >= 1, got '0'"),
        (["--negative-clicks", "-1"], "argument --negative-clicks: expected an integer >= 0, got '-1'"),
        (["--dataset-option", "colour"], "expected KEY=VALUE"),
        (["--dataset-option", "bogus=1"], "unknown option(s) bogus"),
        (["--checkpoint", "missing.pt"], "argument --checkpoint: file missing.pt does not exist"),
        (["--checkpoint", "missing{fold}.pt"], "--checkpoint: file missing0.pt (fold 0) does not exist"),
        (["--checkpoint", "None"], "('none', lower case, means no checkpoint)"),
    ],
)
def test_bad_arguments_give_one_clear_line(no_model, tmp_path, capsys, extra, message):
    code = evaluate.main([*DATA_ARGS, *extra, "--out", str(tmp_path / "bad"), *TINY_ARGS])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("sansa_probe.evaluate: error: ")
    assert not (tmp_path / "bad").exists()


def test_missing_dataset_says_where_to_put_it_and_suggests_synthetic(no_model, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SANSA_DATA", raising=False)
    code = evaluate.main(["--dataset", "coco20i", "--out", str(tmp_path / "x"), *TINY_ARGS])
    assert code == 2
    err = capsys.readouterr().err
    assert "--data-root" in err and "SANSA_DATA" in err and "--dataset synthetic" in err and "Traceback" not in err
    code = evaluate.main(["--dataset", "coco20i", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), *TINY_ARGS])
    assert code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere") in err and "--dataset synthetic" in err


def test_checkpoint_of_another_backbone_is_refused(tiny_model, tmp_path, capsys):
    checkpoint = tmp_path / "hiera_t.pt"
    tiny_model.save_adapters(checkpoint)
    args = [arg if arg != "hiera_t" else "hiera_s" for arg in TINY_ARGS]
    code = evaluate.main([*DATA_ARGS, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "bad"), *args])
    assert code == 2
    err = capsys.readouterr().err
    assert "backbone='hiera_t'" in err and "backbone='hiera_s'" in err and "Traceback" not in err
    assert err.count("\n") == 1
