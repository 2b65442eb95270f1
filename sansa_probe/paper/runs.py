"""The runs behind the paper's tables: one configuration, train a variant, evaluate a model.

Two modes, chosen by :attr:`RunConfig.data_root`:

* **paper** (``data_root`` given): the paper's datasets, every fold, the literature's episode
  counts; SANSA's adapters from ``checkpoints`` (``<checkpoints>/<setting>/<dataset>/fold<f>.pt``,
  default ``$SANSA_CHECKPOINTS``) and ablation variants trained with the paper's recipe.
* **synthetic** (no ``data_root``): the procedural benchmark stands in for every dataset (fold 0
  unless ``folds`` says otherwise). With no model option (``backbone``, ``image_size``,
  ``sam2_checkpoint`` left at their defaults) the model is the shipped **miniature**
  (:func:`sansa_probe.load_miniature`: the pretrained miniature SAM2 at 128 px and the fold's
  shipped SANSA adapters); the variants a table trains (adapter kinds, ratios, J, fine-tuning
  baselines) train on top of the miniature's frozen SAM2 with the miniature's adapter recipe.
  Its numbers are not the paper's and are flagged so. Any model option builds exactly what it
  says instead (``sam2_checkpoint="none"``: a random-init SAM2, adapters trained here).

``small`` shrinks the synthetic settings further (for tests: seconds per run).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sansa_probe import train
from sansa_probe.data.episodes import EpisodeSampler
from sansa_probe.data.registry import get_spec
from sansa_probe.evaluation.episodes import evaluate_episodes
from sansa_probe.evaluation.metrics import unsampled_warnings
from sansa_probe.inference import PROTOCOLS
from sansa_probe.miniature.architecture import BACKBONE, IMAGE_SIZE, SAM2_OVERRIDES, SAM2_VERSION
from sansa_probe.miniature.pipeline import AdapterRecipe
from sansa_probe.miniature.weights import FOLDS, WEIGHTS_DIR, load_miniature, verified_path
from sansa_probe.model import SansaModel, load_sansa
from sansa_probe.paper.compare import OURS_COLUMNS
from sansa_probe.reporting.identity import identity_line, model_identity
from sansa_probe.reporting.sanity import SanityWarning

__all__ = ["RunConfig", "Measurement", "model_identity_line", "checkpoint_path", "train_variant", "build_model", "evaluate_run", "evaluate_miou", "checkpoints_root", "measure", "ours_frame"]

SYNTHETIC = "synthetic"


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Where and how the runs of one table go.

    Args:
        out: folder for trained variants (``train/<name>/...``) and tables.
        data_root: datasets root; ``None`` runs everything on the procedural benchmark.
        checkpoints: root of SANSA's adapter checkpoints (paper mode; default ``$SANSA_CHECKPOINTS``
            or ``./checkpoints``), or one file used for every fold (``{fold}`` is replaced).
        folds: folds to run (default: every fold in paper mode, fold 0 on the procedural benchmark).
        backbone, sam2_checkpoint, image_size: the SAM2 model (defaults: Hiera-L, Meta's weights,
            1024 px in paper mode; the shipped miniature on the procedural benchmark, or with any
            of them given there, Hiera-T at 128/256 px with the given or random weights).
        episodes: test episodes per fold (default: the dataset's literature default; on the
            miniature the shipped measurement's 100, 8 with ``small``; else 48, 4 with ``small``).
        device: torch device.
        small: tiny settings that finish in seconds (tests).
        seed: seed of episodes, prompts and training.
        protocol: preprocessing and scoring of the evaluations (:data:`sansa_probe.inference.PROTOCOLS`:
            ``"release"``, the public SANSA release's, which the paper's tables come from; or ``"hsnet"``).
    """

    out: Path
    data_root: str | None = None
    checkpoints: str | None = None
    folds: tuple[int, ...] | None = None
    backbone: str | None = None
    sam2_checkpoint: str | None = "auto"
    image_size: int | None = None
    episodes: int | None = None
    device: str = "cpu"
    small: bool = False
    seed: int = 0
    train_steps: int | None = None
    progress: bool = True
    protocol: str = "release"

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"episodes: expected an integer >= 1, got {self.episodes}")

    @property
    def synthetic(self) -> bool:
        return self.data_root is None

    @property
    def miniature(self) -> bool:
        """Offline with no model option: the shipped miniature (as the commands' embedded default)."""
        return self.synthetic and self.sam2_checkpoint == "auto" and self.backbone is None and self.image_size is None

    @property
    def model_backbone(self) -> str:
        return self.backbone or (BACKBONE if self.miniature else "hiera_t" if self.synthetic else "hiera_l")

    @property
    def model_image_size(self) -> int:
        if self.miniature:
            return IMAGE_SIZE
        return self.image_size or ((128 if self.small else 256) if self.synthetic else 1024)

    @property
    def sam2_weights(self) -> str | None:
        if self.miniature:
            return str(verified_path("sam2.pt"))
        if self.synthetic and self.sam2_checkpoint == "auto":
            return None  # offline with a model option but no SAM2 weights: random SAM2
        return None if self.sam2_checkpoint in (None, "none") else self.sam2_checkpoint

    def miniature_adapters(self, fold: int) -> Path:
        """The shipped SANSA adapters of ``fold`` (checked against the miniature's manifest)."""
        if fold not in FOLDS:
            raise ValueError(f"fold {fold}: the miniature ships adapters for folds {', '.join(map(str, FOLDS))}")
        return verified_path(f"fold{fold}.pt")

    def model_label(self) -> str:
        """The model in words, for the line a script prints first."""
        if self.miniature:
            return "the shipped miniature (pretrained miniature SAM2 at 128 px + the fold's shipped SANSA adapters)"
        weights = self.sam2_weights
        return f"SAM2 {self.model_backbone} at {self.model_image_size} px with {'random weights' if weights is None else weights}"

    def dataset(self, paper_dataset: str) -> str:
        """The benchmark that really runs for ``paper_dataset``."""
        return SYNTHETIC if self.synthetic else paper_dataset

    def folds_of(self, paper_dataset: str) -> list[int]:
        dataset = self.dataset(paper_dataset)
        count = get_spec(dataset).folds
        if self.folds is not None:
            bad = [f for f in self.folds if not 0 <= f < count]
            if bad:
                raise ValueError(f"folds {bad}: out of range for {dataset} (0..{count - 1})")
            return list(self.folds)
        return [0] if self.synthetic else list(range(count))

    def data_options(self, dataset: str) -> dict[str, Any]:
        if dataset != SYNTHETIC:
            return {}
        if self.miniature:  # as the miniature's own measurement (sansa_probe.miniature.measure)
            return {"image_size": self.model_image_size}
        return {"image_size": 96, "images_per_class": 6} if self.small else {"image_size": 128, "images_per_class": 12}

    def test_episodes(self) -> int | None:
        if self.episodes is not None:
            return self.episodes
        if self.miniature:
            return 8 if self.small else 100  # 100: the shipped measurement's episodes
        return (4 if self.small else 48) if self.synthetic else None

    def model_args(self) -> list[str]:
        """The model options of the package's commands."""
        args = ["--backbone", self.model_backbone, "--image-size", str(self.model_image_size), "--device", self.device,
                "--sam2-checkpoint", self.sam2_weights or "none"]  # fmt: skip
        if self.miniature:
            args += ["--sam2-version", SAM2_VERSION, *(a for o in SAM2_OVERRIDES for a in ("--sam2-override", o))]
        return args


@dataclass(frozen=True)
class Measurement:
    """One number of ours, keyed like the paper's row it stands beside."""

    method: str
    setting: str
    dataset: str
    fold: str
    shots: int
    metric: str
    value: float
    ours_dataset: str
    identity: str = ""  # the model that produced the value (sansa_probe.reporting.identity.identity_line)


def checkpoints_root(config: RunConfig) -> str:
    """``--checkpoints``, else ``$SANSA_CHECKPOINTS``, else ``checkpoints``."""
    return config.checkpoints or os.environ.get("SANSA_CHECKPOINTS") or "checkpoints"


def checkpoint_path(config: RunConfig, dataset: str, fold: int, setting: str = "strict") -> Path:
    """SANSA's adapters for ``dataset``/``fold``: ``<checkpoints>/<setting>/<dataset>/fold<fold>.pt``,
    or ``checkpoints`` itself when it is a file, ``.pt`` or ``.pth`` (a ``{fold}`` in it is replaced)."""
    root = checkpoints_root(config)
    if root.endswith((".pt", ".pth")):  # one file; the public release names its files adapter_<ds>_fold<f>.pth
        return Path(root.replace("{fold}", str(fold)))
    return Path(root).expanduser() / setting / dataset / f"fold{fold}.pt"


def train_variant(config: RunConfig, name: str, *, dataset: str, fold: int, options: list[str] = ()) -> Path:
    """Train one variant with ``python -m sansa_probe.train`` (resumable; skipped when done) and
    return its ``final.pt``. ``options`` are extra train options (``--targets 1``, ``--finetune qkv``...).

    Paper mode uses the paper's recipe (train's defaults). On the miniature the variant trains on
    top of the miniature's SAM2 (frozen unless ``options`` fine-tune it) with the miniature's
    adapter recipe (:class:`sansa_probe.miniature.pipeline.AdapterRecipe`: 150 steps of 4 clips,
    J = 3, lr 2e-3, BCE + Dice; ``train_steps``, default 2 steps of 2 clips when ``small``); otherwise on the procedural benchmark a few steps
    (``train_steps``, default 1 when ``small``, else 24 clips of 4).
    """
    out = config.out / "train" / name / f"fold{fold}"
    final = out / "final.pt"
    if final.is_file():
        return final
    argv = [*config.model_args(), "--fold", str(fold), "--out", str(out), "--seed", str(config.seed)]
    if (out / "checkpoints" / "last.pt").is_file():
        argv.append("--resume")  # an interrupted variant continues; a new one starts (--resume needs a checkpoint)
    if "--datasets" not in options:
        argv += ["--dataset", dataset]
    if config.miniature:
        recipe = AdapterRecipe()
        steps = config.train_steps or (2 if config.small else recipe.steps)
        batch = 2 if config.small else recipe.batch
        argv += ["--dataset-option", f"image_size={config.model_image_size}", "--epochs", "1", "--episodes-per-epoch", str(steps * batch),
                 "--batch-size", str(batch), "--micro-batch", str(batch), "--lr", str(recipe.lr), "--loss", recipe.loss,
                 "--precision", "fp32", "--num-workers", "0"]  # fmt: skip
        if "--targets" not in options:
            argv += ["--targets", str(recipe.targets)]
    elif config.synthetic:
        size, images = (96, 4) if config.small else (128, 12)
        steps = config.train_steps or (1 if config.small else 24)
        argv += ["--dataset-option", f"image_size={size}", "--dataset-option", f"images_per_class={images}", "--epochs", "1",
                 "--episodes-per-epoch", str(2 * steps if config.small else 4 * steps), "--batch-size", "2" if config.small else "4",
                 "--micro-batch", "2", "--num-workers", "0"]  # fmt: skip
    else:
        argv += ["--data-root", str(config.data_root)]
    if not config.progress:
        argv.append("--no-progress")
    code = train.main([*argv, *options])
    if code != 0 or not final.is_file():
        raise RuntimeError(f"training {name} (fold {fold}) failed (exit code {code}); see the message above")
    return final


def build_model(config: RunConfig, *, adapters: str | os.PathLike | None = None, backbone: str | None = None, **recipe: Any) -> SansaModel:
    """The SAM2 model of ``config`` with ``adapters`` loaded (fresh adapters when ``None``).

    On the miniature: :func:`~sansa_probe.load_miniature` for a fold's shipped adapters, else the
    miniature's SAM2 with ``adapters`` (a variant trained on top of it); either way the model's
    identity names the miniature's weights."""
    torch.manual_seed(config.seed)
    if config.miniature and backbone in (None, config.model_backbone) and not recipe:
        return _miniature_model(config, adapters)
    with warnings.catch_warnings():
        if config.sam2_weights is None:
            warnings.filterwarnings("ignore", message="sam2_checkpoint=None")
        return load_sansa(backbone or config.model_backbone, sam2_checkpoint=config.sam2_weights,
                          image_size=config.model_image_size, adapters=adapters, device=config.device, **recipe)  # fmt: skip


def _miniature_model(config: RunConfig, adapters: str | os.PathLike | None) -> SansaModel:
    shipped = {(WEIGHTS_DIR / f"fold{f}.pt").resolve(): f for f in FOLDS}
    fold = None if adapters is None else shipped.get(Path(adapters).resolve())
    if adapters is None or fold is not None:
        return load_miniature(fold, device=config.device)
    model = load_sansa(config.model_backbone, sam2_version=SAM2_VERSION, sam2_checkpoint=config.sam2_weights, image_size=config.model_image_size,
                       sam2_overrides=list(SAM2_OVERRIDES), adapters=adapters, device=config.device)  # fmt: skip
    trained = Path(adapters)  # <out>/train/<variant>/fold<f>/final.pt when train_variant made it
    model.provenance = {**getattr(model, "provenance", {}), "sam2_label": "the miniature SAM2 pretrained here",
                        "adapters_label": f"{trained.parent.parent.name} {trained.parent.name} {trained.name}, trained on the miniature"}  # fmt: skip
    return model


def model_identity_line(model: SansaModel, *, adapters: bool, protocol: str | None = None) -> str:
    """``model``'s identity line (:func:`sansa_probe.reporting.identity.identity_line`, without ``model:``) as it
    runs with its adapters on (SANSA) or off (frozen SAM2), naming the evaluation ``protocol`` if given."""
    return identity_line(model_identity(model, adapters_enabled=adapters, protocol=protocol)).removeprefix("model: ")


def evaluate_run(model: SansaModel, config: RunConfig, *, dataset: str, fold: int, shots: int = 1, adapters: bool = True,
                 split: str = "test", **options: Any) -> dict[str, float]:
    """Evaluate ``model`` on one fold of ``dataset`` (the benchmark that really runs) through
    :func:`sansa_probe.evaluation.evaluate_episodes`; ``options`` go to it (``prompt``,
    ``negative_clicks``, ``semantic_negatives``). Returns ``miou`` (percent), ``n_episodes``,
    ``seconds`` (wall time of the episodes, data loading included) and ``unsampled`` (classes never
    sampled, counted as IoU 0 in ``miou``: then a :class:`~sansa_probe.reporting.sanity.SanityWarning`
    says so in words, with the mean over the sampled classes)."""
    sampler = EpisodeSampler(dataset, fold=fold, split=split, shots=shots, n_episodes=config.test_episodes(), seed=config.seed,
                             root=config.data_root, **config.data_options(dataset))  # fmt: skip
    with model.adapters(adapters), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*were never sampled")  # said in words below, with both means
        start = time.perf_counter()
        metric, rows = evaluate_episodes(model, sampler, seed=config.seed, progress=config.progress, protocol=config.protocol,
                                         description=f"{dataset} fold {fold} {shots}-shot", **options)  # fmt: skip
        seconds = time.perf_counter() - start
        scores = metric.compute()
    what = f"{dataset} fold {fold} {shots}-shot, {'SANSA' if adapters else 'frozen SAM2'}" + "".join(f", {k}={v}" for k, v in options.items())
    for message in unsampled_warnings(scores, what=what):
        warnings.warn(message, SanityWarning, stacklevel=2)
    return {"miou": float(scores["miou"]), "n_episodes": float(len(rows)), "seconds": seconds, "unsampled": len(scores["unsampled"])}


def evaluate_miou(model: SansaModel, config: RunConfig, **run: Any) -> float:
    """mIoU (percent) of :func:`evaluate_run`."""
    return evaluate_run(model, config, **run)["miou"]


def measure(config: RunConfig, paper_dataset: str, fold_values: dict[int, float], *, identities: dict[int, str] | None = None,
            **key: Any) -> Measurement:
    """One :class:`Measurement` from per-fold values: the mean over every fold of the benchmark
    (``fold="mean"``, as the paper prints) or, when only some folds ran, their mean keyed ``"mean"``
    on the procedural benchmark and the single fold's id in paper mode. ``identities``: the
    model of each fold's value (distinct ones joined by `` ; ``)."""
    dataset = config.dataset(paper_dataset)
    identity = " ; ".join(dict.fromkeys(v for _, v in sorted((identities or {}).items()) if v))
    folds = sorted(fold_values)
    value = float(np.mean([fold_values[f] for f in folds]))
    complete = len(folds) == get_spec(dataset).folds
    if config.synthetic:
        where = "miniature, " if config.miniature else ""
        fold, ours_dataset = key.pop("fold", "mean"), f"{SYNTHETIC} ({where}fold {','.join(map(str, folds))})"
    else:
        fold = key.pop("fold", "mean" if complete else ",".join(map(str, folds)))
        ours_dataset = paper_dataset
    return Measurement(dataset=paper_dataset, fold=str(fold), value=value, ours_dataset=ours_dataset, identity=identity, **key)


def ours_frame(table: str, measurements: list[Measurement]) -> pd.DataFrame:
    """Tidy rows of ours (columns :data:`sansa_probe.paper.compare.OURS_COLUMNS`)."""
    rows = [{"table": table, **vars(m)} for m in measurements]
    return pd.DataFrame.from_records(rows, columns=OURS_COLUMNS)
