"""The episode loop of few-shot evaluation: one shard of a benchmark fold through the one inference path.

Per episode (paper eq. 1): the reference prompts are generated from the reference masks by the
seeded test-mode generators (seed ``(seed, episode, shot)``, appendix E.3); references, semantic
negatives and the target go through the image encoder; the references (and negatives, with an
empty mask) are written to memory; the target's low-res logits go to the protocol's output size
and are thresholded, as :class:`~sansa_probe.inference.predictor.SansaPredictor` does. Scores
follow HSNet (:class:`~sansa_probe.evaluation.metrics.FewShotSegmentationMetric`).

Negative prompts (appendix F, table 11): ``negative_clicks`` simulates a user who clicks the most
interior pixel of the largest false-positive region, the target being encoded once;
``semantic_negatives`` adds images of other classes of the fold to memory with an empty mask.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from sansa_probe.data.episodes import EpisodeData, EpisodeSampler
from sansa_probe.evaluation.metrics import FewShotSegmentationMetric
from sansa_probe.evaluation.negatives import choose_semantic_negatives, next_negative_click
from sansa_probe.inference import FewShotInference, Protocol, References, get_protocol, prepare_references
from sansa_probe.model.sansa import SansaModel
from sansa_probe.prompts import PROMPT_TYPES, Mask, Prompt, make_prompt

__all__ = ["EPISODE_COLUMNS", "PreparedEpisode", "episode_prompts", "prepare_episode", "evaluate_episodes", "merge_results"]

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
    _check_options(prompt, negative_clicks=negative_clicks, semantic_negatives=semantic_negatives, num_workers=num_workers)
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
                result = _segment_episode(inference, episode, negative_clicks=negative_clicks)
                metric.update(episode.data.class_id, result["mask"], result["target"], result["ignore"], episode=episode.data.index)
                extras.append(_episode_extras(episode, result))
                bar.update(1)
                if progress:
                    bar.set_postfix(miou=f"{_running_miou(metric):.1f}%")
    finally:
        model.train(was_training)
    return metric, _join_rows(metric, extras)


def _check_options(prompt: str, **counts: int) -> None:
    if prompt not in PROMPT_TYPES:
        raise ValueError(f"prompt {prompt!r}: expected one of {', '.join(PROMPT_TYPES)}")
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: expected an int >= 0, got {value!r}")


def _episode_extras(episode: PreparedEpisode, result: dict[str, Any]) -> dict[str, Any]:
    """The columns of an episode's row that the metric does not count."""
    data = episode.data
    return {
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
    }


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
