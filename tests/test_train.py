"""Training (issue 5): what changes in a step, learning, exact resume after SIGKILL, DDP = one process, ablations."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import json

import pytest
import torch
import torch.multiprocessing as mp
from conftest import build_tiny_model

from sansa_probe.data.episodes import TrainingEpisodeSampler
from sansa_probe.data.synthetic import SyntheticSource
from sansa_probe.model import load_sansa
from sansa_probe.training import ClipDataset, MixedClips, StepBatchSampler, TrainConfig, Trainer, segmentation_loss
from sansa_probe.utils.distributed import DistInfo

SIZE = 128
TINY_CLI = ["--backbone", "hiera_t", "--image-size", str(SIZE), "--sam2-checkpoint", "none", "--device", "cpu",
            "--dataset", "synthetic", "--dataset-option", f"image_size={SIZE}", "--dataset-option", "images_per_class=4", "--num-workers", "0", "--no-progress"]


def clips(*, targets=1, n=64, seed=0, prompt="mask", images_per_class=4):
    source = SyntheticSource(fold=0, split="train", image_size=SIZE, images_per_class=images_per_class)
    sampler = TrainingEpisodeSampler(source, targets=targets, n_episodes=n, seed=seed)
    return ClipDataset(sampler, image_size=SIZE, prompt=prompt, seed=seed)


def trainer_for(model, dataset, tmp_path, **config):
    defaults = dict(epochs=1, steps_per_epoch=len(dataset) // 2, global_batch=2, micro_batch=2, targets=1)
    return Trainer(model=model, dataset=dataset, config=TrainConfig(**{**defaults, **config}), out=tmp_path,
                   device=torch.device("cpu"), progress=False)


def test_one_step_changes_only_adapter_weights(tmp_path):
    model = build_tiny_model(image_size=SIZE)
    before = {k: v.clone() for k, v in model.sam.state_dict().items()}
    trainer = trainer_for(model, clips(targets=2), tmp_path, targets=2)
    trainer.optimizer_step(list(trainer.loader(0, 1)))
    after = model.sam.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= set(model.adapter_names)
    assert any(k.endswith("up_proj.weight") for k in changed)


def test_loss_decreases_over_a_few_dozen_steps(tmp_path):
    torch.manual_seed(0)
    model = build_tiny_model(image_size=SIZE)
    dataset = clips(n=80)
    trainer = trainer_for(model, dataset, tmp_path, lr=1e-3)
    rows = trainer.fit()
    losses = np.array([r["loss"] for r in rows])
    assert len(losses) == 40
    assert losses[-10:].mean() < losses[:10].mean() - 0.03, losses.round(3)
    logged = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["step"]) for r in logged] == list(range(1, 41))
    assert float(logged[0]["loss"]) == pytest.approx(losses[0])
    assert (tmp_path / "adapters.pt").is_file() and (tmp_path / "final.pt").is_file()


def test_losses_and_schedule_are_deterministic():
    sampler = StepBatchSampler(start_step=3, end_step=5, micro_batch=2, accumulation=2, rank=1, world_size=2)
    assert list(sampler) == [[26, 27], [30, 31], [34, 35], [38, 39]]
    single = StepBatchSampler(start_step=3, end_step=4, micro_batch=8, accumulation=1)
    ranks = [list(StepBatchSampler(start_step=3, end_step=4, micro_batch=2, accumulation=2, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(i for r in ranks for b in r for i in b) == list(single)[0]
    a, b = clips(n=8), clips(n=8)
    for i in (0, 5):
        assert torch.equal(a[i]["targets"], b[i]["targets"]) and torch.equal(a[i]["target_masks"], b[i]["target_masks"])


def _run_train(out: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "sansa_probe.train", *TINY_CLI, "--epochs", "1", "--episodes-per-epoch", "16",
            "--batch-size", "2", "--micro-batch", "2", "--targets", "2", "--save-every", "2", "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _losses(out: Path) -> list[tuple[int, str]]:
    return [(int(r["step"]), r["loss"]) for r in csv.DictReader(open(out / "log.csv"))]


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_the_losses(tmp_path):
    unbroken = tmp_path / "unbroken"
    proc = _run_train(unbroken)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    broken = tmp_path / "broken"
    proc = _run_train(broken)
    deadline = time.time() + 600
    while time.time() < deadline:  # kill it mid-run, after a checkpoint and a few more steps
        if (broken / "log.csv").exists() and len(_losses(broken)) >= 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(_losses(broken)) < 8
    proc = _run_train(broken, "--resume")
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    assert _losses(broken) == _losses(unbroken)
    assert [s for s, _ in _losses(broken)] == list(range(1, 9))
    resumed = torch.load(broken / "final.pt", weights_only=True)["trainable"]
    reference = torch.load(unbroken / "final.pt", weights_only=True)["trainable"]
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        grads = _one_step_gradients(DistInfo(rank=rank, world_size=world), micro_batch=4 // world)
        if rank == 0:
            torch.save(grads, Path(out_dir) / f"ddp{world}.pt")
    finally:
        torch.distributed.destroy_process_group()


def _one_step_gradients(info: DistInfo, *, micro_batch: int) -> dict[str, torch.Tensor]:
    model = build_tiny_model(image_size=SIZE)
    with torch.no_grad():  # non-zero up projections, so every adapter gets a gradient
        for name, p in model.adapter_parameters().items():
            if "up_proj.weight" in name:
                p.normal_(0, 0.01, generator=torch.Generator().manual_seed(len(name)))
    dataset = clips(targets=2, n=8)
    config = TrainConfig(epochs=1, steps_per_epoch=1, global_batch=4, micro_batch=micro_batch, targets=2, clip=0.0)
    trainer = Trainer(model=model, dataset=dataset, config=config, out=Path("/tmp/unused"), device=torch.device("cpu"), dist=info, progress=False)
    trainer.optimizer_step(list(trainer.loader(0, 1)))
    return {n: p.grad.clone() for n, p in zip(trainer.names, trainer.parameters)}


@pytest.mark.slow
def test_gloo_ddp_gradients_equal_one_process_on_the_same_global_batch(tmp_path):
    single = _one_step_gradients(DistInfo(), micro_batch=4)
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    ddp = torch.load(tmp_path / "ddp2.pt", weights_only=True)
    assert ddp.keys() == single.keys()
    assert any(g.abs().sum() > 0 for g in single.values())
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "build, config, prompt",
    [
        (dict(adapter="houlsby"), {}, "mask"),
        (dict(adapter="lora"), {}, "point"),
        (dict(adapter="mona"), {}, "box"),
        (dict(ratio=0.8, stages=(1, 2, 3)), {"loss": "focal_dice", "clip": 0.1}, "scribble"),
        (dict(stages=()), {"finetune": "decoder"}, "multi"),
        (dict(stages=()), {"finetune": "qkv"}, "mask"),
        (dict(stages=()), {"finetune": "backbone", "scheduler": "cosine"}, "mask"),
        (dict(stages=()), {"finetune": "full", "targets": 3}, "mask"),
    ],
    ids=["houlsby", "lora", "mona", "ratio-stages-focal", "decoder", "qkv", "backbone", "full-J3"],
)
def test_every_ablation_builds_and_runs_one_step(tmp_path, build, config, prompt):
    model = build_tiny_model(image_size=SIZE, **build)
    targets = config.get("targets", 1)
    trainer = trainer_for(model, clips(targets=targets, n=4, prompt=prompt), tmp_path, **config)
    names = set(trainer.names)
    before = {n: p.clone() for n, p in model.sam.named_parameters()}
    trainer.optimizer_step(list(trainer.loader(0, 1)))
    changed = {n for n, p in model.sam.named_parameters() if not torch.equal(before[n], p)}
    assert changed and changed <= names
    # the trained tensors reload through the common loader
    path = tmp_path / "trained.pt"
    from sansa_probe.io.atomic import atomic_torch_save

    atomic_torch_save(path, trainer.checkpoint_payload(full=False))
    reloaded = load_sansa(sam2_checkpoint=None, adapters=path)
    state = dict(reloaded.sam.named_parameters())
    for name in names:
        assert torch.equal(state[name], dict(model.sam.named_parameters())[name])


def test_cli_smoke_and_from_scratch(tmp_path, capsys):
    from sansa_probe import train

    code = train.main([*TINY_CLI, "--epochs", "1", "--episodes-per-epoch", "2", "--batch-size", "2", "--micro-batch", "1",
                       "--targets", "1", "--from-scratch", "--out", str(tmp_path / "scratch")])
    assert code == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"model (before training): SANSA (adapters on) | hiera_t SAM2 2.1 @{SIZE}px | SAM2 weights: RANDOM")
    summary = json.loads(printed.out.strip().splitlines()[-1])  # the run's summary: stdout
    assert summary["step"] == summary["total_steps"] > 0 and summary["out"] == str(tmp_path / "scratch")
    assert "warning:" not in printed.err  # from scratch: random SAM2 weights and fresh adapters are the recipe, not a mistake
    identity = json.loads((tmp_path / "scratch" / "run.json").read_text())["identity"]
    assert identity["sam2_weights"] == "random" and identity["adapters"] == "fresh" and identity["precision"] == "float32"
    payload = torch.load(tmp_path / "scratch" / "final.pt", weights_only=True)
    assert payload["finetune"] == "full" and payload["config"]["stages"] == []
    assert not (tmp_path / "scratch" / "adapters.pt").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
        (["--fold", "7"], "fold 7 is out of range"),
        (["--targets", "0"], "argument --targets: expected an integer >= 1, got '0'"),
        (["--batch-size", "3", "--micro-batch", "2"], "not a multiple of micro-batch"),
        (["--adapters", "off"], "--adapters off"),
        (["--dataset", "coco20i", "--data-root", "/nonexistent"], "--dataset synthetic"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, extra, message):
    from sansa_probe import train

    code = train.main([*TINY_CLI, "--out", str(tmp_path / "err"), *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_checkpoint_of_another_backbone_is_refused(tmp_path, capsys):
    from sansa_probe import train

    build_tiny_model(image_size=SIZE).save_adapters(tmp_path / "t.pt")
    code = train.main([*TINY_CLI, "--backbone", "hiera_s", "--checkpoint", str(tmp_path / "t.pt"), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "backbone='hiera_t'" in capsys.readouterr().err


def test_resume_refuses_another_recipe(tmp_path):
    model = build_tiny_model(image_size=SIZE)
    trainer = trainer_for(model, clips(n=8), tmp_path)
    trainer.fit(until=1)
    other = trainer_for(build_tiny_model(image_size=SIZE), clips(n=8), tmp_path, lr=5e-4)
    with pytest.raises(ValueError, match="lr=0.0001, this run has lr=0.0005"):
        other.resume(tmp_path / "checkpoints" / "last.pt")


def test_object_score_model_cannot_train(tmp_path):
    model = build_tiny_model(image_size=SIZE, object_scores=True)
    with pytest.raises(ValueError, match="object_scores=False"):
        trainer_for(model, clips(n=4), tmp_path)


def test_losses_by_hand():
    logits = torch.tensor([[[10.0, -10.0], [10.0, -10.0]]])
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    terms = segmentation_loss(logits, target)
    assert float(terms["dice"]) == pytest.approx(1 - (2 * 2 + 1) / (2 + 2 + 1), abs=1e-3)
    assert float(terms["bce"]) == pytest.approx(4.54e-5, rel=0.01)
    valid = torch.tensor([[[True, False], [True, False]]])
    wrong = torch.tensor([[[1.0, 1.0], [1.0, 1.0]]])  # the wrong column is ignored
    assert float(segmentation_loss(logits, wrong, valid)["bce"]) == pytest.approx(4.54e-5, rel=0.01)
    with pytest.raises(ValueError, match="loss 'l2'"):
        segmentation_loss(logits, target, kind="l2")


def test_mixed_clips_follow_the_weights():
    a = TrainingEpisodeSampler(SyntheticSource(fold=0, split="train", image_size=64, images_per_class=4), targets=1, n_episodes=50)
    b = TrainingEpisodeSampler(SyntheticSource(fold=1, split="train", image_size=64, images_per_class=4), targets=1, n_episodes=50)
    mixed = MixedClips([a, b], [3.0, 1.0], seed=0)
    picks = [mixed.which(i) for i in range(50)]
    assert 0.55 < picks.count(0) / 50 < 0.95
    assert [MixedClips([a, b], [1.0, 0.0], seed=0).which(i) for i in range(20)] == [0] * 20
    with pytest.raises(ValueError, match="one weight per dataset"):
        MixedClips([a, b], [1.0], seed=0)


def test_all_classes_source_covers_every_fold():
    from sansa_probe.data.union import all_classes_source

    union = all_classes_source("synthetic", image_size=64, images_per_class=2)
    assert len(union.class_ids()) == 64
    image = union.image_ids(union.class_ids()[5])[0]
    assert union.load_image(image).shape == (64, 64, 3)
