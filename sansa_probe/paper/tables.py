"""Which runs make each table: one function per table/figure, ``config -> ours`` (tidy rows).

Every function returns the rows of :func:`sansa_probe.paper.runs.ours_frame`, keyed like the
paper's rows (:mod:`sansa_probe.paper.numbers`) so that :func:`~sansa_probe.paper.side_by_side`
can put them beside the printed numbers. Frozen SAM2 is always the same model object with its
adapters off. On the procedural benchmark each table runs on fold 0 (unless ``folds`` says
otherwise) and stands in for the paper's main dataset (COCO-20i unless the table has another);
offline with no model option the model is the shipped miniature (its fold's SANSA adapters, and
variants trained on top of its frozen SAM2). Every row carries the identity of the model that
produced it (:func:`~sansa_probe.paper.runs.model_identity_line`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from sansa_probe.data.registry import get_dataset
from sansa_probe.model.checkpoint import read_adapter_checkpoint
from sansa_probe.paper.annotation_study import annotation_study
from sansa_probe.paper.runs import (Measurement, RunConfig, build_model, checkpoint_path, checkpoints_root, evaluate_miou, evaluate_run, measure,
                                    model_identity_line, ours_frame, train_variant)  # fmt: skip

__all__ = ["sansa_checkpoint", "trainable_millions", "table1", "table2", "table3", "table4", "table6", "table8", "table9", "table10", "table11", "fig6"]

MAIN = "coco20i"


def sansa_checkpoint(config: RunConfig, paper_dataset: str, fold: int, *, setting: str = "strict") -> Path:
    """SANSA's adapters for one fold: the given checkpoint (paper mode, or ``--checkpoints`` file),
    else offline the miniature's shipped adapters of the fold, or (with a model option) adapters
    trained here with the paper's recipe in a few steps."""
    if config.miniature and not config.checkpoints:
        return config.miniature_adapters(fold)
    if config.synthetic and not config.checkpoints:
        return train_variant(config, "sansa", dataset="synthetic", fold=fold)
    dataset = config.dataset(paper_dataset)
    path = checkpoint_path(config, dataset, fold, setting)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} (SANSA {setting}, {dataset} fold {fold}) does not exist; "
                                f"pass --checkpoints ROOT holding {setting}/{dataset}/fold<f>.pt, or one .pt file")  # fmt: skip
    return path


def trainable_millions(checkpoint: str | Path | None) -> float:
    """Millions of trained parameters stored in a training checkpoint (0 for ``None``: frozen)."""
    if checkpoint is None:
        return 0.0
    state = read_adapter_checkpoint(checkpoint).state  # any kind: saved adapters, a training checkpoint, the release
    return sum(t.numel() for t in state.values()) / 1e6


class _Folds:
    """Per-(method, setting, shots) values over folds, turned into measurements at the end."""

    def __init__(self, config: RunConfig, paper_dataset: str) -> None:
        self.config, self.paper_dataset = config, paper_dataset
        self.values: dict[tuple, dict[int, float]] = defaultdict(dict)
        self.identities: dict[tuple, dict[int, str]] = defaultdict(dict)

    def add(self, fold: int, value: float, *, method: str, setting: str, shots: int = 1, metric: str = "miou", fold_key: str | None = None,
            identity: str = "") -> None:
        self.values[(method, setting, shots, metric, fold_key)][fold] = value
        self.identities[(method, setting, shots, metric, fold_key)][fold] = identity

    def measurements(self) -> list[Measurement]:
        out = []
        for key, values in self.values.items():
            method, setting, shots, metric, fold_key = key
            extra = {} if fold_key is None else {"fold": fold_key}
            out.append(measure(self.config, self.paper_dataset, values, method=method, setting=setting, shots=shots, metric=metric,
                               identities=self.identities[key], **extra))  # fmt: skip
        return out


def _datasets(config: RunConfig, paper: Sequence[str]) -> list[str]:
    return [MAIN if MAIN in paper else paper[0]] if config.synthetic else list(paper)


def table1(config: RunConfig, *, shots: Sequence[int] = (1, 5)) -> pd.DataFrame:
    """Strict setting: SANSA and frozen SAM2, 1- and 5-shot (``shots``), every fold of LVIS-92i, COCO-20i, FSS-1000."""
    bad = [k for k in shots if k not in (1, 5)]
    if bad or not shots:
        raise ValueError(f"shots {list(shots)}: expected 1, 5 or both (the paper's columns)")
    measurements: list[Measurement] = []
    for paper_dataset in _datasets(config, ["lvis92i", "coco20i", "fss1000"]):
        folds = _Folds(config, paper_dataset)
        model = None
        for fold in config.folds_of(paper_dataset):
            checkpoint = sansa_checkpoint(config, paper_dataset, fold)
            if model is None:
                model = build_model(config, adapters=checkpoint)
            else:
                model.load_adapters(checkpoint)
            for k in shots:
                for method, setting, on in (("SANSA", "strict", True), ("SAM 2", "training-free", False)):
                    value = evaluate_miou(model, config, dataset=config.dataset(paper_dataset), fold=fold, shots=k, adapters=on)
                    folds.add(fold, value, method=method, setting=setting, shots=k, identity=model_identity_line(model, adapters=on, protocol=config.protocol))
        measurements += folds.measurements()
    return ours_frame("table1", measurements)


def fig6(config: RunConfig) -> pd.DataFrame:
    """Reference prompt types (point, scribble, box, mask), 1-shot strict COCO-20i, SANSA and frozen SAM2."""
    folds = _Folds(config, MAIN)
    model = None
    for fold in config.folds_of(MAIN):
        checkpoint = sansa_checkpoint(config, MAIN, fold)
        model = build_model(config, adapters=checkpoint) if model is None else model
        model.load_adapters(checkpoint)
        for prompt in ("point", "scribble", "box", "mask"):
            for method, on in (("SANSA", True), ("SAM2 (frozen)", False)):
                folds.add(fold, evaluate_miou(model, config, dataset=config.dataset(MAIN), fold=fold, prompt=prompt, adapters=on),
                          method=method, setting=prompt, identity=model_identity_line(model, adapters=on, protocol=config.protocol))  # fmt: skip
    return ours_frame("fig6", folds.measurements())


def table11(config: RunConfig, *, clicks: Iterable[int] = (1, 3, 5)) -> pd.DataFrame:
    """Negative prompts: simulated negative clicks on the target, semantic negatives with empty masks
    (training-free). The paper's training-based semantic negatives are not implemented."""
    folds = _Folds(config, MAIN)
    model = None
    for fold in config.folds_of(MAIN):
        checkpoint = sansa_checkpoint(config, MAIN, fold)
        model = build_model(config, adapters=checkpoint) if model is None else model
        model.load_adapters(checkpoint)
        runs = [("baseline", {})] + [(f"+{n} negative click{'s' if n > 1 else ''}", {"negative_clicks": n}) for n in clicks]
        runs.append(("semantic negatives, training-free", {"semantic_negatives": 1}))
        for setting, options in runs:
            folds.add(fold, evaluate_miou(model, config, dataset=config.dataset(MAIN), fold=fold, **options), method="SANSA", setting=setting,
                      identity=model_identity_line(model, adapters=True, protocol=config.protocol))  # fmt: skip
    return ours_frame("table11", folds.measurements())


# ------------------------------------------------------------------------------ trained variants
# name -> (method, setting, train options); the paper's table 3 / table 4 rows
FINETUNE_VARIANTS = {
    "from_scratch": ("From Scratch", ["--from-scratch"]),
    "full_ft": ("Full FT", ["--finetune", "full"]),
    "decoder_ft": ("Decoder FT", ["--finetune", "decoder"]),
    "qkv_ft": ("QKV FT", ["--finetune", "qkv"]),
    "backbone_ft": ("Backbone FT", ["--finetune", "backbone"]),
}
ADAPTER_VARIANTS = {
    "lora": ("LoRA", "adapter kind", ["--adapter", "lora"]),
    "houlsby": ("Adapter", "adapter kind", ["--adapter", "houlsby"]),
    "mona": ("MONA", "adapter kind", ["--adapter", "mona"]),
    "ratio_0.8": ("AdaptFormer", "bottleneck ratio 0.8", ["--ratio", "0.8"]),
    "ratio_0.5": ("AdaptFormer", "bottleneck ratio 0.5", ["--ratio", "0.5"]),
}
PLACEMENT_VARIANTS = {  # Hiera stages with adapters; the paper's mIoUs of this block are not in its text
    "stages_all": ("AdaptFormer", "stages 0-3 (all)", ["--stages", "0", "1", "2", "3"]),
    "stages_early": ("AdaptFormer", "stages 0-1 (early)", ["--stages", "0", "1"]),
    "stages_middle": ("AdaptFormer", "stages 1-2 (middle)", ["--stages", "1", "2"]),
}
SMALL_TABLE3 = ("decoder_ft", "lora", "ratio_0.8")


def _variant_miou(config: RunConfig, name: str, paper_dataset: str, fold: int, options: list[str]) -> tuple[float, float, str]:
    """Train (or reuse) variant ``name`` on one fold, evaluate it 1-shot; returns (mIoU, trained
    parameters in millions, the model's identity line)."""
    checkpoint = train_variant(config, name, dataset=config.dataset(paper_dataset), fold=fold, options=options)
    model = build_model(config, adapters=checkpoint)
    miou = evaluate_miou(model, config, dataset=config.dataset(paper_dataset), fold=fold)
    return miou, trainable_millions(checkpoint), model_identity_line(model, adapters=True, protocol=config.protocol)


def table3(config: RunConfig, *, variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Ablations on COCO-20i: fine-tuning baselines, adapter kinds and bottleneck ratios, adapter
    placement; each variant trained with the paper's recipe (only what ``variants`` names, default
    all; with ``small`` a few), beside frozen SAM2 and SANSA."""
    every = {**{k: (m, "fine-tuning", o) for k, (m, o) in FINETUNE_VARIANTS.items()}, **ADAPTER_VARIANTS, **PLACEMENT_VARIANTS}
    names = list(variants) if variants is not None else (list(SMALL_TABLE3) if config.small else list(every))
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ValueError(f"variants {unknown}: expected some of {', '.join(every)}")
    folds = _Folds(config, MAIN)
    for fold in config.folds_of(MAIN):
        checkpoint = sansa_checkpoint(config, MAIN, fold)
        model = build_model(config, adapters=checkpoint)
        for method, on in (("SANSA", True), ("Frozen", False)):
            identity = model_identity_line(model, adapters=on, protocol=config.protocol)
            folds.add(fold, evaluate_miou(model, config, dataset=config.dataset(MAIN), fold=fold, adapters=on), method=method, setting="fine-tuning",
                      identity=identity)  # fmt: skip
            folds.add(fold, trainable_millions(checkpoint) if on else 0.0, method=method, setting="fine-tuning", metric="trainable_params_m",
                      identity=identity)  # fmt: skip
        for name in names:
            method, setting, options = every[name]
            miou, params, identity = _variant_miou(config, name, MAIN, fold, options)
            folds.add(fold, miou, method=method, setting=setting, identity=identity)
            if setting == "fine-tuning":
                folds.add(fold, params, method=method, setting=setting, metric="trainable_params_m", identity=identity)
    return ours_frame("table3", folds.measurements())


def table4(config: RunConfig, *, variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Adaptation strategies in-domain (trained on every class, tested on the fold's classes) and
    out-of-domain (trained on the other folds' classes: the strict setting)."""
    strategies = {"decoder_ft": ("Decoder FT", ["--finetune", "decoder"]), "qkv_ft": ("QKV FT", ["--finetune", "qkv"]),
                  "backbone_ft": ("Backbone FT", ["--finetune", "backbone"]), "sansa": ("SANSA", [])}  # fmt: skip
    names = list(variants) if variants is not None else (["decoder_ft", "sansa"] if config.small else list(strategies))
    unknown = [n for n in names if n not in strategies]
    if unknown:
        raise ValueError(f"variants {unknown}: expected some of {', '.join(strategies)}")
    folds = _Folds(config, MAIN)
    dataset = config.dataset(MAIN)
    for fold in config.folds_of(MAIN):
        for name in names:
            method, options = strategies[name]
            if name == "sansa":
                out_ckpt = sansa_checkpoint(config, MAIN, fold)
                out_model = build_model(config, adapters=out_ckpt)
                out_miou, out_identity = evaluate_miou(out_model, config, dataset=dataset, fold=fold), model_identity_line(out_model, adapters=True, protocol=config.protocol)
            else:
                out_miou, _, out_identity = _variant_miou(config, name, MAIN, fold, options)
                out_ckpt = config.out / "train" / name / f"fold{fold}" / "final.pt"
            in_options = ["--setting", "generalist", "--datasets", dataset, "--ratio", "0.3", *options]
            if not config.synthetic:
                in_options += ["--epochs", "5"]  # the strict recipe's length, on every class
            in_miou, _, in_identity = _variant_miou(config, f"{name}_in_domain", MAIN, fold, in_options)
            folds.add(fold, out_miou, method=method, setting="out-of-domain", identity=out_identity)
            folds.add(fold, in_miou, method=method, setting="in-domain", identity=in_identity)
            folds.add(fold, trainable_millions(out_ckpt), method=method, setting="out-of-domain", metric="trainable_params_m", identity=out_identity)
    return ours_frame("table4", folds.measurements())


def table9(config: RunConfig, *, lengths: Sequence[int] | None = None) -> pd.DataFrame:
    """Training sequence length J (1 = the standard few-shot objective), 1-shot COCO-20i and LVIS-92i."""
    lengths = list(lengths) if lengths is not None else ([1, 2] if config.small else [1, 2, 3, 4, 5, 7])
    measurements: list[Measurement] = []
    for paper_dataset in _datasets(config, ["coco20i", "lvis92i"]):
        folds = _Folds(config, paper_dataset)
        for fold in config.folds_of(paper_dataset):
            for j in lengths:
                miou, _, identity = _variant_miou(config, f"J{j}", paper_dataset, fold, ["--targets", str(j)])
                folds.add(fold, miou, method="SANSA", setting=f"J={j}", identity=identity)
        measurements += folds.measurements()
    return ours_frame("table9", measurements)


BACKBONES = {"Tiny": "hiera_t", "Base": "hiera_b+", "Large": "hiera_l"}
MINIATURE_ONLY = ("offline the shipped miniature (a shrunk Hiera-T SAM2 at 128 px) is the only backbone: its row stands beside "
                  "the paper's Tiny row; Base and Large need SAM2's weights and the paper's checkpoints (--data-root, --checkpoints)")


def table8(config: RunConfig, *, sizes: Sequence[str] | None = None) -> pd.DataFrame:
    """SAM2 encoder size: total and trained parameters, target images per second (1-shot episodes,
    references included), mIoU on COCO-20i. Paper mode loads ``strict-<backbone>`` checkpoints
    (``strict`` for Hiera-L). Offline the miniature is the only backbone (:data:`MINIATURE_ONLY`,
    also in the returned frame's ``attrs["notes"]``); with a model option the procedural benchmark
    trains each size here."""
    if config.miniature:
        if sizes is not None and list(sizes) != ["Tiny"]:
            raise ValueError(f"sizes {list(sizes)}: {MINIATURE_ONLY}")
        sizes = ["Tiny"]
    sizes = list(sizes) if sizes is not None else (["Tiny"] if config.small else list(BACKBONES))
    folds = _Folds(config, MAIN)
    dataset = config.dataset(MAIN)
    for fold in config.folds_of(MAIN):
        for size in sizes:
            backbone = BACKBONES[size]
            if config.miniature and not config.checkpoints:
                checkpoint, backbone = config.miniature_adapters(fold), None
            elif config.synthetic and not config.checkpoints:
                sized = RunConfig(**{**_fields(config), "backbone": backbone})
                checkpoint = train_variant(sized, f"sansa_{backbone}", dataset=dataset, fold=fold)
            else:
                checkpoint = sansa_checkpoint(config, MAIN, fold, setting="strict" if backbone == "hiera_l" else f"strict-{backbone}")
            model = build_model(config, adapters=checkpoint, backbone=backbone)
            run = evaluate_run(model, config, dataset=dataset, fold=fold)
            setting, method, identity = f"hiera {size.lower()}", f"SANSA {size}", model_identity_line(model, adapters=True, protocol=config.protocol)
            folds.add(fold, run["miou"], method=method, setting=setting, identity=identity)
            folds.add(fold, run["n_episodes"] / run["seconds"], method=method, setting=setting, metric="img_s", identity=identity)
            folds.add(fold, sum(p.numel() for p in model.parameters()) / 1e6, method=method, setting=setting, metric="params_m", identity=identity)
            folds.add(fold, trainable_millions(checkpoint), method=method, setting=setting, metric="trainable_params_m", identity=identity)
    ours = ours_frame("table8", folds.measurements())
    if config.miniature:
        ours.attrs["notes"] = [MINIATURE_ONLY]
    return ours


def _fields(config: RunConfig) -> dict:
    return {f.name: getattr(config, f.name) for f in fields(config) if f.init}


def table10(config: RunConfig) -> pd.DataFrame:
    """Pascal-5i per fold with Pascal-trained adapters, and COCO->Pascal with COCO-trained adapters
    (paper mode; Pascal-5i's own folds, without the class-overlap repurposing of the COCO->Pascal
    protocol). On the procedural benchmark only the first part runs, on fold 0."""
    measurements: list[Measurement] = []
    runs = [("pascal5i", "pascal5i")] + ([] if config.synthetic else [("coco->pascal", "coco20i")])
    for setting, trained_on in runs:
        folds = _Folds(config, "pascal5i")
        model = None
        for fold in config.folds_of("pascal5i"):
            checkpoint = sansa_checkpoint(config, trained_on, fold)
            model = build_model(config, adapters=checkpoint) if model is None else model
            model.load_adapters(checkpoint)
            value = evaluate_miou(model, config, dataset=config.dataset("pascal5i"), fold=fold)
            identity = model_identity_line(model, adapters=True, protocol=config.protocol)
            folds.add(fold, value, method="SANSA", setting=setting, fold_key=str(fold), identity=identity)
            folds.add(fold, value, method="SANSA", setting=setting, identity=identity)  # the mean over the folds that ran
        measurements += folds.measurements()
    return ours_frame("table10", measurements)


def table6(config: RunConfig, *, targets: int | None = None, batch_size: int = 8) -> pd.DataFrame:
    """Large-scale annotation (appendix C): fold 0 of COCO-20i and LVIS-92i, one reference per
    class, ``targets`` images of the fold (paper 10,000; 6 with ``small``, 48 on the procedural
    benchmark) annotated for every class; mIoU and the wall time scaled to 10,000 targets."""
    targets = targets if targets is not None else ((6 if config.small else 48) if config.synthetic else 10_000)
    folds = [0] if config.folds is None else list(config.folds)
    measurements: list[Measurement] = []
    for paper_dataset in _datasets(config, ["coco20i", "lvis92i"]):
        values = _Folds(config, paper_dataset)
        dataset = config.dataset(paper_dataset)
        for fold in folds:
            model = build_model(config, adapters=sansa_checkpoint(config, paper_dataset, fold))
            identity = model_identity_line(model, adapters=True)
            source = get_dataset(dataset, fold=fold, split="test", root=config.data_root, **config.data_options(dataset))
            result = annotation_study(model, source, n_targets=targets, out=config.out / "annotation" / dataset / f"fold{fold}",
                                      seed=config.seed, batch_size=batch_size, progress=config.progress)  # fmt: skip
            values.add(fold, result["miou"], method="SANSA", setting="annotation", fold_key=str(fold), identity=identity)
            values.add(fold, result["minutes_per_10k"], method="SANSA", setting="annotation", metric="minutes", fold_key=str(fold), identity=identity)
        measurements += values.measurements()
    return ours_frame("table6", measurements)


GENERALIST_VARIANTS = ("generalist", "generalist +LVIS", "generalist +LVIS, PACO")


def table2(config: RunConfig, *, variant: str = "generalist", checkpoint: str | None = None) -> pd.DataFrame:
    """Generalist in-context setting: one model for every benchmark (1/5-shot LVIS-92i, COCO-20i,
    FSS-1000; 1-shot Pascal-Part and PACO-Part), every fold. ``checkpoint``: the generalist adapters
    (paper mode default ``<checkpoints>/generalist/model.pt``); on the procedural benchmark a
    generalist model (bottleneck 0.8, every class) is trained here (on the miniature: on top of its SAM2)."""
    if variant not in GENERALIST_VARIANTS:
        raise ValueError(f"variant {variant!r}: expected one of {', '.join(GENERALIST_VARIANTS)}")
    if config.synthetic and checkpoint is None:
        checkpoint = train_variant(config, "generalist", dataset="synthetic", fold=0,
                                   options=["--setting", "generalist", "--datasets", "synthetic"])  # fmt: skip
    elif checkpoint is None:
        checkpoint = str(Path(checkpoints_root(config)).expanduser() / "generalist" / "model.pt")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} (generalist adapters) does not exist; pass --checkpoint FILE")
    model = build_model(config, adapters=checkpoint)
    measurements: list[Measurement] = []
    plan = [("lvis92i", (1, 5)), ("coco20i", (1, 5)), ("fss1000", (1, 5)), ("pascal_part", (1,)), ("paco_part", (1,))]
    for paper_dataset, shot_list in plan if not config.synthetic else [(MAIN, (1, 5))]:
        folds = _Folds(config, paper_dataset)
        for fold in config.folds_of(paper_dataset):
            for shots in shot_list:
                for method, setting, on in (("SANSA", variant, True), ("SAM2 (frozen)", variant, False)):
                    value = evaluate_miou(model, config, dataset=config.dataset(paper_dataset), fold=fold, shots=shots, adapters=on)
                    folds.add(fold, value, method=method, setting=setting, shots=shots, identity=model_identity_line(model, adapters=on, protocol=config.protocol))
        measurements += folds.measurements()
    return ours_frame("table2", measurements)


TABLES: dict[str, Callable[..., pd.DataFrame]] = {
    "table1": table1, "table2": table2, "table3": table3, "table4": table4, "table8": table8, "table9": table9,
    "table6": table6, "table10": table10, "table11": table11, "fig6": fig6,
}  # fmt: skip
