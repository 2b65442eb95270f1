"""``python -m sansa_probe.evaluate``: few-shot segmentation benchmarks as the paper reports them.

    python -m sansa_probe.evaluate --dataset coco20i --fold 0 --shots 1 --prompt mask \\
        --checkpoint sansa_coco_fold0.pt --data-root /data --out results/coco-f0
    python -m sansa_probe.evaluate --dataset coco20i --all-folds --checkpoint 'ckpt/fold{fold}.pt' ...
    python -m sansa_probe.evaluate --dataset synthetic --episodes 200 --adapters off --out results/sam2
    torchrun --standalone --nproc_per_node 8 -m sansa_probe.evaluate ...   # episodes sharded by rank

Per episode (paper eq. 1): the reference prompts are generated from the reference masks by
the seeded test-mode generators (seed ``(seed, episode, shot)``, appendix E.3); references,
semantic negatives and the target go through the image encoder in one forward; the
references (and negatives, with an empty mask) are written to memory; the target's low-res
logits are resized bilinearly to the target's own size and thresholded, as
:class:`~sansa_probe.inference.predictor.SansaPredictor` does. Scores follow HSNet
(:class:`~sansa_probe.evaluation.metrics.FewShotSegmentationMetric`): per-class summed I / U, mIoU over
every class of the fold (an unsampled class counts as 0 and is reported), pooled FB-IoU.

Negative prompts (appendix F, table 11): ``--negative-clicks N`` simulates a user who clicks
the most interior pixel of the largest false-positive region N times, the target being
encoded once; ``--semantic-negatives N`` adds N images of other classes of the fold to memory
with an empty mask.

Writes into ``--out``: ``results.csv`` (tidy: one row per measurement, per-class IoU rows,
and the mean over folds with ``--all-folds``), ``episodes.csv`` (one row per episode) and
``summary.json`` (configuration, checkpoint SHA-256, versions, device, timing, results).
``--adapters off`` evaluates frozen SAM2 through the same code path.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import sys
import time
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from sansa_probe.commands.grammar import (
    add_data_group,
    add_model_group,
    add_output_group,
    add_run_group,
    check_model_args,
    command_parser,
    dataset_options,
    model_from_args,
    non_negative_int,
    positive_int,
    run_command,
)
from sansa_probe.data import get_spec
from sansa_probe.data.episodes import EpisodeData, EpisodeSampler
from sansa_probe.reporting.identity import identity_line, model_identity, package_versions, said_in_words
from sansa_probe.inference import PROTOCOLS, FewShotInference, Protocol, References, get_protocol, prepare_references
from sansa_probe.evaluation.metrics import FewShotSegmentationMetric
from sansa_probe.model.sansa import SansaModel
from sansa_probe.evaluation.negatives import choose_semantic_negatives, next_negative_click
from sansa_probe.prompts import PROMPT_TYPES, Mask, Prompt, make_prompt
from sansa_probe.reporting.sanity import check_mask_areas, report
from sansa_probe.utils.distributed import all_gather_objects, distributed
from sansa_probe.utils.precision import inference_precision
from sansa_probe.utils.hashing import file_sha256
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text, check_output_folder

__all__ = [
    "PreparedEpisode",
    "FoldResult",
    "episode_prompts",
    "prepare_episode",
    "evaluate_episodes",
    "merge_results",
    "results_table",
    "episodes_table",
    "file_sha256",
    "main",
]

PROG = "sansa_probe.evaluate"
EPISODE_COLUMNS = [
    "episode", "class_id", "target_id", "reference_ids", "negative_ids", "intersection", "union", "iou",
    "bg_intersection", "bg_union", "score", "pred_area", "target_area", "image_area", "clicks", "iou_before_clicks",
]  # fmt: skip


# ----------------------------------------------------------------------------- one episode, in a worker


@dataclass(eq=False)
class PreparedEpisode:
    """An episode ready for the model (built in a DataLoader worker).

    ``references``: the k references and n semantic negatives (empty masks) as model inputs;
    ``target`` ``(1, 3, S, S)``: the target's model input; ``negative_ids``: the n negative image ids.
    """

    data: EpisodeData
    references: References
    target: torch.Tensor
    negative_ids: tuple[str, ...] = ()


def episode_prompts(data: EpisodeData, kind: str, *, seed: int) -> list[Prompt]:
    """The k reference prompts of an episode, from the reference masks (test mode).

    Shot ``j`` of episode ``i`` uses ``make_prompt(kind, mask_j, seed=(seed, i, j))``. A mask prompt
    of an empty reference mask stays an empty :class:`Mask` (the literature feeds the mask as is);
    other kinds need a foreground pixel and raise a ``ValueError`` naming the episode.
    """
    prompts: list[Prompt] = []
    for shot, (ref_id, mask) in enumerate(zip(data.reference_ids, data.reference_masks)):
        if not mask.any():
            if kind == "mask":
                prompts.append(Mask(mask))
                continue
            raise ValueError(
                f"episode {data.index}: reference {ref_id!r} has an empty mask of class {data.class_id!r}; "
                f"a {kind} prompt needs at least one foreground pixel"
            )
        prompts.append(make_prompt(kind, mask, seed=(seed, data.index, shot), train=False))
    return prompts


def prepare_episode(
    sampler: EpisodeSampler, index: int, *, prompt: str, seed: int, image_size: int, semantic_negatives: int = 0, protocol: Protocol | None = None
) -> PreparedEpisode:
    """Load episode ``index`` and turn it into model inputs (images, prompts, semantic negatives).

    ``protocol``: the preprocessing (default the release's, :class:`~sansa_probe.inference.ReleaseProtocol`, with the
    square of the sampler's dataset, at ``image_size``).
    """
    if protocol is None:
        protocol = get_protocol("release", image_size=image_size, dataset=getattr(sampler.source, "name", None))
    data = sampler.load(index)
    prompts = episode_prompts(data, prompt, seed=seed)
    negative_ids: tuple[str, ...] = ()
    if semantic_negatives:
        source = sampler.source
        negative_ids = tuple(
            choose_semantic_negatives(
                count=semantic_negatives,
                class_id=data.class_id,
                classes=sorted(source.class_ids()),
                images_of=sampler.images,
                exclude=(data.target_id, *data.reference_ids),
                contains_class=lambda image_id: bool(source.load_mask(image_id, data.class_id).any()),
                seed=seed,
                episode=data.index,
                photo_of=sampler.photo,
            )
        )
    references = prepare_references(
        protocol, data.reference_images, prompts, negative_images=[sampler.source.load_image(i) for i in negative_ids],
        allow_empty_masks=True, images_name=f"episode {data.index}: references", prompts_name=f"episode {data.index}: prompts",
    )  # fmt: skip
    return PreparedEpisode(data=data, references=references, target=protocol.images([data.target_image]), negative_ids=negative_ids)


class _PreparedEpisodes(Dataset):
    """Map-style dataset over the episode indices of one shard; items are :class:`PreparedEpisode`."""

    def __init__(self, sampler: EpisodeSampler, indices: Sequence[int], **prepare: Any) -> None:
        self.sampler = sampler
        self.indices = list(indices)
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> PreparedEpisode:
        return prepare_episode(self.sampler, self.indices[j], **self.prepare)


def _single(batch: list[PreparedEpisode]) -> PreparedEpisode:
    return batch[0]


# ----------------------------------------------------------------------------- the model side


def _foreground_iou(pred: np.ndarray, target: np.ndarray, ignore: np.ndarray | None) -> float:
    valid = np.ones_like(target) if ignore is None else ~ignore
    union = int(np.count_nonzero((pred | target) & valid))
    return 100.0 * int(np.count_nonzero(pred & target & valid)) / max(union, 1)


def _running_miou(metric: FewShotSegmentationMetric) -> float:
    """mIoU over the classes sampled so far (for the progress bar only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = [v for v in metric.compute()["per_class"].values() if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def _segment_episode(inference: FewShotInference, episode: PreparedEpisode, *, negative_clicks: int) -> dict[str, Any]:
    """Predict one episode's target at the protocol's output size; returns the mask, its logits,
    the scored ground truth and the bookkeeping."""
    data, protocol = episode.data, inference.protocol
    memory = inference.memory(episode.references)
    feats = inference.encode(episode.target)  # encoded once, segmented again after each click
    size = data.target_mask.shape
    target, ignore = protocol.ground_truth(data.target_mask), protocol.ground_truth(data.target_ignore)
    prediction = inference.predict_encoded(memory, feats, [size])[0]
    mask = first = prediction.mask.cpu().numpy()
    clicks: list[tuple[float, float]] = []
    for _ in range(negative_clicks):
        click = next_negative_click(mask, target, ignore)
        if click is None:
            break
        clicks.append(click)
        points = protocol.clicks(np.array(clicks), np.zeros(len(clicks), np.int64), size=size)
        prediction = inference.predict_encoded(memory, feats, [size], clicks=points)[0]
        mask = prediction.mask.cpu().numpy()
    return {
        "mask": mask,
        "logits": prediction.logits,
        "target": target,
        "ignore": ignore,
        "score": prediction.score,
        "clicks": len(clicks),
        "iou_before_clicks": _foreground_iou(first, target, ignore),
    }


def evaluate_episodes(
    model: SansaModel,
    sampler: EpisodeSampler,
    *,
    prompt: str = "mask",
    seed: int | None = None,
    threshold: float = 0.0,
    negative_clicks: int = 0,
    semantic_negatives: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    class_ids: Sequence[Hashable] | None = None,
    autocast: bool | None = None,
    protocol: Protocol | str = "release",
    progress: bool = False,
    description: str = "evaluate",
) -> tuple[FewShotSegmentationMetric, pd.DataFrame]:
    """Evaluate ``model`` (as its adapters are currently switched) on the episodes of one shard.

    Args:
        model: a :class:`SansaModel` on its device; run in eval mode under ``torch.no_grad``
            (bfloat16 autocast on CUDA when ``autocast``; default: the model's ``precision`` option).
        sampler: the test episodes (one benchmark fold).
        prompt: reference annotation, one of :data:`~sansa_probe.prompts.PROMPT_TYPES`.
        seed: prompt seed (``(seed, episode, shot)``) and semantic-negative seed; default
            ``sampler.seed``.
        threshold: logit threshold of the binarised prediction (0 = probability 0.5).
        negative_clicks: simulated negative clicks on the target after the first prediction.
        semantic_negatives: images of other classes of the fold added to memory with empty masks.
        rank, world_size: evaluate ``sampler.indices(rank, world_size)`` only (merge shards with
            :func:`merge_results`; the result equals one process's).
        num_workers: DataLoader workers that load episodes and build prompts.
        class_ids: the classes of mIoU (default ``sampler.scored_classes()``, the classes it can draw).
        protocol: preprocessing and the resolution of scoring: a :class:`Protocol` or a name of
            :data:`~sansa_probe.inference.PROTOCOLS` (default ``"release"``, the public release's,
            with the square of ``sampler.source.name``; ``"hsnet"``: scored at the target's own size).
        progress: show a tqdm bar with the running mIoU (over the classes sampled so far).

    Returns:
        ``(metric, rows)``: the shard's :class:`FewShotSegmentationMetric` (``episode=`` the sampler
        index) and one row per episode (columns :data:`EPISODE_COLUMNS`), sorted by episode.
    """
    if prompt not in PROMPT_TYPES:
        raise ValueError(f"prompt {prompt!r}: expected one of {', '.join(PROMPT_TYPES)}")
    for name, value in (("negative_clicks", negative_clicks), ("semantic_negatives", semantic_negatives), ("num_workers", num_workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
    if isinstance(protocol, str):
        protocol = get_protocol(protocol, image_size=model.image_size, dataset=getattr(sampler.source, "name", None))
    inference = FewShotInference(model, protocol=protocol, threshold=threshold, autocast=autocast)
    seed = sampler.seed if seed is None else seed
    metric = FewShotSegmentationMetric(sampler.scored_classes() if class_ids is None else class_ids)
    dataset = _PreparedEpisodes(
        sampler, sampler.indices(rank, world_size), prompt=prompt, seed=seed, image_size=model.image_size,
        semantic_negatives=semantic_negatives, protocol=inference.protocol,
    )  # fmt: skip
    loader = DataLoader(dataset, batch_size=1, shuffle=False, num_workers=num_workers, collate_fn=_single)
    extras: list[dict[str, Any]] = []
    was_training = model.training
    model.eval()
    try:
        with tqdm(total=len(dataset), desc=description, unit="ep", disable=not progress, file=sys.stderr) as bar:
            for episode in loader:
                data = episode.data
                result = _segment_episode(inference, episode, negative_clicks=negative_clicks)
                metric.update(data.class_id, result["mask"], result["target"], result["ignore"], episode=data.index)
                extras.append({
                    "episode": data.index,
                    "target_id": data.target_id,
                    "reference_ids": ";".join(data.reference_ids),
                    "negative_ids": ";".join(episode.negative_ids),
                    "score": result["score"],
                    "pred_area": int(result["mask"].sum()),
                    "image_area": int(result["mask"].size),
                    "target_area": int(result["target"].sum()),
                    "clicks": result["clicks"],
                    "iou_before_clicks": result["iou_before_clicks"],
                })
                bar.update(1)
                if progress:
                    bar.set_postfix(miou=f"{_running_miou(metric):.1f}%")
    finally:
        model.train(was_training)
    return metric, _join_rows(metric, extras)


def _join_rows(metric: FewShotSegmentationMetric, extras: list[dict[str, Any]]) -> pd.DataFrame:
    counts = metric.episode_rows()
    if not extras:
        return pd.DataFrame({c: pd.Series(dtype=counts[c].dtype if c in counts else object) for c in EPISODE_COLUMNS})
    rows = counts.merge(pd.DataFrame(extras), on="episode", how="left", validate="one_to_one")
    return rows[EPISODE_COLUMNS].sort_values("episode", kind="stable").reset_index(drop=True)


def merge_results(parts: Sequence[tuple[FewShotSegmentationMetric | dict[str, Any], pd.DataFrame]]) -> tuple[FewShotSegmentationMetric, pd.DataFrame]:
    """Merge the ``(metric or its state_dict, rows)`` of every shard into the single-process result."""
    if not parts:
        raise ValueError("parts: expected the results of at least one shard")
    states = [m.state_dict() if isinstance(m, FewShotSegmentationMetric) else m for m, _ in parts]
    metric = FewShotSegmentationMetric.from_state_dict(states[0])
    for state in states[1:]:
        metric.merge(state)
    frames = [r for _, r in parts if len(r)] or [parts[0][1]]  # an idle shard's empty frame would turn dtypes to object
    rows = pd.concat(frames, ignore_index=True).sort_values("episode", kind="stable").reset_index(drop=True)
    if rows["episode"].duplicated().any():
        raise ValueError("parts: the same episode was evaluated by two shards; expected disjoint shards")
    return metric, rows


# ----------------------------------------------------------------------------- tables and files


@dataclass
class FoldResult:
    """The merged result of one fold: the metric, its ``compute()``, the episode rows, class names."""

    fold: int
    metric: FewShotSegmentationMetric
    rows: pd.DataFrame
    class_names: dict[Hashable, str] = field(default_factory=dict)
    checkpoint: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.scores:
            self.scores = self.metric.compute()  # warns once about unsampled classes


def results_table(results: Sequence[FoldResult], **labels: Any) -> pd.DataFrame:
    """Tidy results: one row per measurement.

    Columns: the ``labels`` (e.g. ``dataset, shots, prompt, adapters``), ``fold``, ``metric``
    (``miou``, ``fb_iou``, ``n_episodes``, ``n_unsampled``, or ``iou`` for a class), ``class_id``,
    ``class_name`` (empty unless ``metric == "iou"``), ``value`` (IoUs in percent). With several
    folds, ``fold == "mean"`` rows hold the mean mIoU and FB-IoU over folds (the papers' "Mean").
    """
    records: list[dict[str, Any]] = []

    def add(fold: Any, metric: str, value: float, class_id: Any = "", class_name: str = "") -> None:
        records.append({**labels, "fold": fold, "metric": metric, "class_id": class_id, "class_name": class_name, "value": value})

    for result in results:
        scores = result.scores
        add(result.fold, "miou", scores["miou"])
        add(result.fold, "fb_iou", scores["fb_iou"])
        add(result.fold, "n_episodes", float(scores["n_episodes"]))
        add(result.fold, "n_unsampled", float(len(scores["unsampled"])))
        for class_id, value in scores["per_class"].items():
            add(result.fold, "iou", value, class_id, result.class_names.get(class_id, ""))
    if len(results) > 1:
        add("mean", "miou", float(np.mean([r.scores["miou"] for r in results])))
        add("mean", "fb_iou", float(np.mean([r.scores["fb_iou"] for r in results])))
    columns = [*labels, "fold", "metric", "class_id", "class_name", "value"]
    return pd.DataFrame.from_records(records, columns=columns)


def episodes_table(results: Sequence[FoldResult], **labels: Any) -> pd.DataFrame:
    """Every fold's episode rows with the ``labels`` and ``fold`` columns in front."""
    frames = [r.rows.assign(fold=r.fold) for r in results]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["fold", *EPISODE_COLUMNS])
    for i, (name, value) in enumerate(labels.items()):
        table.insert(i, name, value)
    return table[[*labels, "fold", *EPISODE_COLUMNS]]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return _json_safe(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    add_data_group(parser)
    benchmark = parser.add_argument_group("benchmark")
    benchmark.add_argument("--all-folds", action="store_true", help="evaluate every fold and report the mean (--checkpoint may contain {fold})")
    benchmark.add_argument("--shots", type=positive_int, default=1, help="annotated references per episode, k >= 1 (default 1)")
    benchmark.add_argument("--prompt", choices=PROMPT_TYPES, default="mask", help="reference annotation (default mask)")
    benchmark.add_argument("--split", choices=["test", "val", "train"], default="test", help="split to evaluate (default test)")
    benchmark.add_argument("--episodes", type=positive_int, default=None, help="episodes per fold (default: the dataset's literature default)")
    benchmark.add_argument("--seed", type=non_negative_int, default=0, help="seed of episodes, prompts and semantic negatives (default 0)")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--protocol", choices=list(PROTOCOLS), default="release",
                            help="preprocessing and scoring: 'release' (default; the public SANSA release's, which the paper's tables "
                                 "come from: a per-dataset square, 640 or 518 px, scored there) or 'hsnet' (straight to the model "
                                 "size, scored at each image's own resolution)")
    evaluation.add_argument("--threshold", type=float, default=0.0, help="logit threshold of the masks (default 0 = probability 0.5)")
    evaluation.add_argument("--negative-clicks", type=non_negative_int, default=0, help="simulated negative clicks on each target (appendix F)")
    evaluation.add_argument("--semantic-negatives", type=non_negative_int, default=0,
                            help="images of other classes added to memory with an empty mask (appendix F)")
    evaluation.add_argument("--num-workers", type=non_negative_int, default=2, help="DataLoader workers loading episodes (default 2)")
    add_model_group(parser, checkpoint_help="with --all-folds it may contain {fold}, formatted per fold")
    add_output_group(parser, writes="results.csv, episodes.csv and summary.json")
    add_run_group(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, lambda args: _run(args, argv), prog=PROG)


def _checked_args(args: argparse.Namespace) -> tuple[list[int], dict[str, Any]]:
    """Validate the benchmark arguments before anything expensive; returns the folds and dataset options."""
    spec = get_spec(args.dataset)
    if not math.isfinite(args.threshold):
        raise ValueError(f"--threshold {args.threshold}: expected a finite number")
    if not args.all_folds and not 0 <= args.fold < spec.folds:
        raise ValueError(f"--fold {args.fold} is out of range for {spec.name}: expected 0..{spec.folds - 1}")
    folds = list(range(spec.folds)) if args.all_folds else [args.fold]
    if args.checkpoint is not None:
        for fold in folds:
            path = Path(_checkpoint_for(args.checkpoint, fold))
            if not path.is_file():
                raise FileNotFoundError(f"--checkpoint: file {path} (fold {fold}) does not exist")
    return folds, dataset_options(args)


def _checkpoint_for(template: str | None, fold: int) -> str | None:
    if template is None:
        return None
    return template.replace("{fold}", str(fold))


def _sampler(args: argparse.Namespace, fold: int, options: dict[str, Any]) -> EpisodeSampler:
    try:
        return EpisodeSampler(args.dataset, fold=fold, split=args.split, shots=args.shots, n_episodes=args.episodes,
                              seed=args.seed, root=args.data_root, **options)
    except TypeError as exc:  # a builder that does not take one of the options
        raise ValueError(f"--dataset-option: dataset {args.dataset!r} does not accept {sorted(options)} ({exc})") from None


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    started, clock = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    check_output_folder(Path(args.out), name="--out")  # an unwritable or file --out fails now, not after the work
    check_model_args(args)
    folds, options = _checked_args(args)
    pending = _sampler(args, folds[0], options)  # data errors surface before the model is built
    adapters_on = args.adapters != "off"
    labels = {"dataset": get_spec(args.dataset).name, "shots": args.shots, "prompt": args.prompt,
              "adapters": "on" if adapters_on else "off", "protocol": args.protocol, "negative_clicks": args.negative_clicks,
              "semantic_negatives": args.semantic_negatives}  # fmt: skip
    with distributed(args.device) as (info, device):
        torch.manual_seed(args.seed)  # random-init SAM2 (--sam2-checkpoint none) is then identical on every rank
        model, loaded = None, None
        results: list[FoldResult] = []
        for fold in folds:
            checkpoint = _checkpoint_for(args.checkpoint, fold)
            if model is None:
                with said_in_words():  # the identity's warnings say it in words below
                    model = model_from_args(args, adapters=checkpoint, device=device)
                identity = model_identity(model, adapters_enabled=adapters_on, precision=inference_precision(device, model.autocast),
                                          protocol=args.protocol)
                labels["model"] = identity_line(identity).removeprefix("model: ")
                if info.is_main:
                    print(identity_line(identity), file=sys.stderr)
                    report(identity["warnings"])
            elif checkpoint != loaded and checkpoint is not None:
                model.load_adapters(checkpoint)
            loaded = checkpoint
            sampler = pending if pending is not None else _sampler(args, fold, options)  # one fold's data in memory at a time
            pending = None
            with model.adapters(adapters_on):
                metric, rows = evaluate_episodes(
                    model, sampler, prompt=args.prompt, seed=args.seed, threshold=args.threshold,
                    negative_clicks=args.negative_clicks, semantic_negatives=args.semantic_negatives,
                    rank=info.rank, world_size=info.world_size, num_workers=args.num_workers, protocol=args.protocol,
                    progress=info.is_main and not args.no_progress, description=f"{labels['dataset']} fold {fold}",
                )  # fmt: skip
            parts = all_gather_objects((metric.state_dict(), rows))
            if info.is_main:
                metric, rows = merge_results(parts)
                names = {c: sampler.source.class_name(c) for c in metric.class_ids}
                results.append(FoldResult(fold=fold, metric=metric, rows=rows, class_names=names, checkpoint=checkpoint))
        if not info.is_main:
            return 0
        out = Path(args.out)
        table = results_table(results, **labels)
        atomic_write_text(out / "results.csv", table.to_csv(index=False))
        atomic_write_text(out / "episodes.csv", episodes_table(results, **labels).to_csv(index=False))
        summary = _summary(args, argv, results, model, labels, device=device, world_size=info.world_size,
                           started=started, seconds=time.perf_counter() - clock)  # fmt: skip
        summary["identity"] = identity
        summary["warnings"] = [*identity["warnings"], *_mask_warnings(results)]
        atomic_write_json(out / "summary.json", _json_safe(summary))
    report(summary["warnings"][len(identity["warnings"]):])
    for result in results:
        s = result.scores
        print(f"{labels['dataset']} fold {result.fold} {args.shots}-shot {args.prompt}: mIoU {s['miou']:.2f}%  "
              f"FB-IoU {s['fb_iou']:.2f}%  ({s['n_episodes']} episodes)", file=sys.stderr)  # fmt: skip
    if len(results) > 1:
        mean = table[table["fold"] == "mean"].set_index("metric")["value"]
        print(f"{labels['dataset']} mean over {len(results)} folds: mIoU {mean['miou']:.2f}%  FB-IoU {mean['fb_iou']:.2f}%", file=sys.stderr)
    print(f"wrote {out / 'results.csv'}, {out / 'episodes.csv'} and {out / 'summary.json'}", file=sys.stderr)
    return 0


def _mask_warnings(results: list[FoldResult]) -> list[str]:
    """Sanity check in words: most predicted masks empty, or most covering (almost) the whole target image."""
    rows = pd.concat([r.rows for r in results], ignore_index=True)
    return check_mask_areas(rows["pred_area"], rows["image_area"], what="evaluation masks")


def _summary(args, argv, results: list[FoldResult], model: SansaModel, labels: dict[str, Any], *, device: torch.device,
             world_size: int, started: datetime.datetime, seconds: float) -> dict[str, Any]:  # fmt: skip
    checkpoints: dict[str, dict[str, Any]] = {}  # resolved path -> {"path", "sha256", "folds"}
    for result in results:
        if result.checkpoint is not None:
            path = str(Path(result.checkpoint).resolve())
            if path not in checkpoints:
                checkpoints[path] = {"path": path, "sha256": file_sha256(path), "folds": []}
            checkpoints[path]["folds"].append(result.fold)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    folds = {
        str(r.fold): {"miou": r.scores["miou"], "fb_iou": r.scores["fb_iou"], "n_episodes": r.scores["n_episodes"],
                      "unsampled": list(r.scores["unsampled"])}
        for r in results
    }  # fmt: skip
    summary: dict[str, Any] = {
        "command": PROG,
        "argv": list(sys.argv[1:] if argv is None else argv),
        "config": vars(args),
        **labels,
        "split": args.split,
        "folds": [r.fold for r in results],
        "seed": args.seed,
        "episodes": {str(r.fold): int(r.scores["n_episodes"]) for r in results},
        "checkpoints": list(checkpoints.values()),
        "model": model.config.to_dict(),
        "versions": package_versions(),
        "device": {"type": device.type, "name": str(device), "description": device_name, "world_size": world_size},
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "results": {"folds": folds},
        "files": {"results": "results.csv", "episodes": "episodes.csv"},
    }
    if len(results) > 1:
        summary["results"]["mean"] = {
            "miou": float(np.mean([r.scores["miou"] for r in results])),
            "fb_iou": float(np.mean([r.scores["fb_iou"] for r in results])),
        }
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
