"""Episodes: deterministic few-shot test episodes and J-target training episodes (paper eq. 7).

Every episode ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` and the source's
sorted id lists only, so it does not depend on which process, worker or rank asks for it,
nor in which order: any split of the indices (``indices(rank, world_size)``, DataLoader
workers) gives exactly the episodes of one process.

Test episodes (:class:`EpisodeSampler`): a class, a target image containing it and ``shots``
distinct reference images of the same class, never the target. Which class/target comes
next follows the dataset's ``DatasetSpec.episode_policy``:

* ``random_class``  -- a uniformly random class each episode, then a random target
  (COCO-20i, Pascal-5i: 1,000 episodes per fold);
* ``cycle_classes`` -- class ``i mod C``, then a random target (LVIS-92i: 2,300; parts: 2,500);
* ``every_image``   -- the ``(class, image)`` pairs in order, each the target once
  (FSS-1000: 2,400), wrapping around when more episodes are asked for;
* ``list_order``    -- the source's published evaluation list (``source.episode_pairs()``)
  in file order, wrapping around (Pascal-5i: HSNet's val lists, 1,000 episodes).

Only classes with at least ``shots + 1`` images take part, and the metric averages over
exactly those (:meth:`EpisodeSampler.scored_classes`). A source whose benchmark episode
count depends on its data defines ``benchmark_episodes()`` (Pascal-Part: ``min(val pairs,
2500)``); otherwise the registry's ``DatasetSpec.default_episodes`` applies. Masks are the union of all
instances of the class (``SegmentationSource.load_mask``). For sources whose images are
crops of photos (they define ``source_image_id(id)``, e.g. the part benchmarks), no
reference comes from the target's photo and eligibility counts distinct photos.

Training episodes (:class:`TrainingEpisodeSampler`): one annotated reference and ``targets``
(J, default 3) target images of one class, J + 1 distinct images (targets never from the
reference's photo).
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass
from typing import Any, Iterator, Union

import numpy as np
from torch.utils.data import Dataset

from sansa_probe.data.base import ClassId, SegmentationSource
from sansa_probe.data.registry import DatasetSpec, get_dataset, get_spec

__all__ = [
    "MAX_EPISODES",
    "POLICIES",
    "Episode",
    "EpisodeData",
    "EpisodeDataset",
    "EpisodeSampler",
    "TrainingEpisode",
    "TrainingEpisodeData",
    "TrainingEpisodeSampler",
    "check_episode_count",
    "collate_episodes",
]

POLICIES = ("random_class", "cycle_classes", "every_image", "list_order")
# The one bound on an episode count (evaluation episodes per fold, training clips per epoch): the
# paper's benchmarks use 1,000 episodes per fold; the largest training set has ~100k images.
MAX_EPISODES = 1_000_000


def check_episode_count(value: int, name: str) -> int:
    """``value`` when at most :data:`MAX_EPISODES`, else a ``ValueError`` naming ``name``."""
    if value > MAX_EPISODES:
        raise ValueError(f"{name} {value}: expected at most {MAX_EPISODES:,} episodes (the paper's benchmarks use 1,000 per fold)")
    return value

DatasetLike = Union[str, SegmentationSource]


@dataclass(frozen=True)
class Episode:
    """Test episode ``index``: segment ``class_id`` in ``target_id`` from ``reference_ids`` (``shots`` ids)."""

    index: int
    class_id: ClassId
    target_id: str
    reference_ids: tuple[str, ...]


@dataclass(frozen=True)
class TrainingEpisode:
    """Training episode ``index``: one annotated ``reference_id`` and J ``target_ids`` of ``class_id``."""

    index: int
    class_id: ClassId
    reference_id: str
    target_ids: tuple[str, ...]


@dataclass(eq=False)
class EpisodeData:
    """A loaded test episode.

    ``target_image``: ``HxWx3`` uint8; ``target_mask``: ``HxW`` bool; ``target_ignore``:
    ``HxW`` bool of pixels excluded from evaluation, or None; ``reference_images`` /
    ``reference_masks``: ``shots`` arrays ``HkxWkx3`` uint8 / ``HkxWk`` bool (sizes may differ).
    """

    index: int
    class_id: ClassId
    target_id: str
    reference_ids: tuple[str, ...]
    target_image: np.ndarray
    target_mask: np.ndarray
    target_ignore: np.ndarray | None
    reference_images: list[np.ndarray]
    reference_masks: list[np.ndarray]


@dataclass(eq=False)
class TrainingEpisodeData:
    """A loaded training clip (paper eq. 7): one reference, J targets, all of ``class_id``.

    ``reference_images`` / ``reference_masks``: one ``HxWx3`` uint8 / ``HxW`` bool array (a
    list, shaped like :class:`EpisodeData`); ``target_images`` / ``target_masks`` /
    ``target_ignores``: J arrays each (ignores may be None).
    """

    index: int
    class_id: ClassId
    reference_ids: tuple[str, ...]
    target_ids: tuple[str, ...]
    reference_images: list[np.ndarray]
    reference_masks: list[np.ndarray]
    target_images: list[np.ndarray]
    target_masks: list[np.ndarray]
    target_ignores: list[np.ndarray | None]


def _positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} {value!r}: expected an integer >= 1")
    return int(value)


def _resolve(
    dataset: DatasetLike, *, fold: int, split: str, root: str | os.PathLike | None, options: dict[str, Any], shots: int | None
) -> tuple[SegmentationSource, DatasetSpec | None]:
    """The source (built from a name with ``root``/``options``) and its spec when registered."""
    if isinstance(dataset, SegmentationSource):
        if root is not None or options:
            raise ValueError("root= and dataset options apply only when dataset is a name; got a SegmentationSource")
        try:
            spec = get_spec(dataset.name)
        except (ValueError, ImportError):
            spec = None
        return dataset, spec
    if isinstance(dataset, str):
        spec = get_spec(dataset)
        opts = dict(options)
        if shots is not None and spec.extra.get("build_takes_shots") and "shots" not in opts:
            opts["shots"] = shots
        return get_dataset(dataset, fold=fold, split=split, root=root, **opts), spec
    raise ValueError(f"dataset {dataset!r}: expected a dataset name or a SegmentationSource")


def _checked(mask: np.ndarray, image: np.ndarray, what: str) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{what} has shape {mask.shape} but its image is {image.shape[:2]}; expected HxW of the image")
    return mask


class _Sampler:
    """Shared machinery: class -> sorted image ids (cached), index checks, sharding, per-episode RNG."""

    source: SegmentationSource
    seed: int

    def __init__(self, *, source: SegmentationSource, seed: int) -> None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed {seed!r}: expected an integer >= 0")
        self.source = source
        self.seed = int(seed)
        self._images: dict[ClassId, list[str]] = {}
        self._eligible: list[ClassId] | None = None
        self._pairs: list[tuple[ClassId, str]] | None = None

    def _minimum_images(self) -> int:
        raise NotImplementedError

    def images(self, class_id: ClassId) -> list[str]:
        """Sorted image ids of ``class_id`` in the source (cached)."""
        if class_id not in self._images:
            self._images[class_id] = sorted(self.source.image_ids(class_id))
        return self._images[class_id]

    @property
    def classes(self) -> list[ClassId]:
        """Sorted classes with enough images for an episode."""
        if self._eligible is None:
            need = self._minimum_images()
            eligible = [c for c in sorted(self.source.class_ids()) if len({self.photo(i) for i in self.images(c)}) >= need]
            if not eligible:
                raise ValueError(
                    f"{self.source!r} has no class with at least {need} images; an episode needs {need} distinct images of one class"
                )
            self._eligible = eligible
        return self._eligible

    def pairs(self) -> list[tuple[ClassId, str]]:
        """Every ``(class, image)`` of the eligible classes, classes and images sorted."""
        if self._pairs is None:
            self._pairs = [(c, image) for c in self.classes for image in self.images(c)]
        return self._pairs

    def __len__(self) -> int:
        raise NotImplementedError

    def _check_index(self, index: int) -> int:
        i = operator.index(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"episode index {index} is out of range for {n} episodes")
        return i

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index])

    def indices(self, rank: int = 0, world_size: int = 1) -> list[int]:
        """The episode indices of ``rank`` out of ``world_size`` (strided); their union is ``range(len(self))``."""
        world_size = _positive_int(world_size, "world_size")
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank!r}: expected 0..{world_size - 1}")
        return list(range(int(rank), len(self), world_size))

    def photo(self, image_id: str) -> str:
        """The photo an image id comes from: ``source.source_image_id(id)`` for sources whose
        images are crops (part benchmarks), else the id itself."""
        of = getattr(self.source, "source_image_id", None)
        return str(of(image_id)) if callable(of) else image_id

    def _distinct(self, rng: np.random.Generator, images: list[str], count: int, exclude: str | None = None) -> tuple[str, ...]:
        """``count`` distinct ids of ``images``, none from the photo of ``exclude``."""
        banned = None if exclude is None else self.photo(exclude)
        pool = [image for image in images if banned is None or self.photo(image) != banned]
        if len(pool) < count:  # pragma: no cover - eligibility prevents it
            raise ValueError(f"need {count} distinct images, the class has {len(pool)}")
        return tuple(pool[j] for j in rng.choice(len(pool), size=count, replace=False))


class EpisodeSampler(_Sampler):
    """Deterministic k-shot test episodes of one benchmark fold.

    Args:
        dataset: a dataset name (built with ``root``/``$SANSA_DATA`` and ``options``) or a
            :class:`SegmentationSource`.
        fold, split: the fold and split to build when ``dataset`` is a name.
        shots: references per episode (k >= 1).
        n_episodes: number of episodes; default the source's ``benchmark_episodes()`` when it
            has one, else the dataset's ``DatasetSpec.default_episodes`` (``every_image`` /
            ``list_order`` without one: one per pair).
        seed: episode ``i`` depends only on ``(seed, i)``.
        root: data root when ``dataset`` is a name.
        policy: override the dataset's ``episode_policy`` (one of :data:`POLICIES`).
        **options: passed to the dataset builder (e.g. ``layout="json"``).

    ``sampler[i]`` is an :class:`Episode` (ids only); ``sampler.load(i)`` reads it as
    :class:`EpisodeData`.
    """

    def __init__(
        self,
        dataset: DatasetLike,
        fold: int = 0,
        split: str = "test",
        shots: int = 1,
        n_episodes: int | None = None,
        seed: int = 0,
        *,
        root: str | os.PathLike | None = None,
        policy: str | None = None,
        **options: Any,
    ) -> None:
        self.shots = _positive_int(shots, "shots")
        n_episodes = _positive_int(n_episodes, "n_episodes", allow_none=True)
        if n_episodes is not None:
            check_episode_count(n_episodes, "n_episodes")
        source, spec = _resolve(dataset, fold=fold, split=split, root=root, options=options, shots=self.shots)
        super().__init__(source=source, seed=seed)
        self.fold = fold
        self.split = getattr(source, "split", split)
        self.policy = policy if policy is not None else (spec.episode_policy if spec is not None else "random_class")
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r}: expected one of {', '.join(POLICIES)}")
        if self.policy == "list_order" and not callable(getattr(source, "episode_pairs", None)):
            raise ValueError(f"policy 'list_order': {source!r} has no published episode list (episode_pairs()); use another policy")
        hook = getattr(source, "benchmark_episodes", None)
        self._benchmark_episodes = hook if callable(hook) else None
        self._default_episodes = spec.default_episodes if spec is not None else None
        if n_episodes is None and self._benchmark_episodes is None and self._default_episodes is None:
            if self.policy not in ("every_image", "list_order"):
                raise ValueError(f"n_episodes: {source!r} has no default episode count for policy {self.policy!r}; pass n_episodes")
        self._n = n_episodes
        self._ordered: list[tuple[ClassId, str]] | None = None

    def _minimum_images(self) -> int:
        return self.shots + 1

    def scored_classes(self) -> list[ClassId]:
        """The classes this sampler can draw (sorted): the classes mIoU averages over.

        Classes of the source with at most ``shots`` images never make an episode; counting
        them as IoU 0 would lower mIoU (HSNet and Matcher average over the drawable classes)."""
        return list(self.classes)

    def ordered_pairs(self) -> list[tuple[ClassId, str]]:
        """``list_order``: the source's ``episode_pairs()`` of drawable classes, in the published order."""
        if self._ordered is None:
            eligible = set(self.classes)
            self._ordered = [(c, image) for c, image in self.source.episode_pairs() if c in eligible]
            if not self._ordered:
                raise ValueError(f"{self.source!r}: its episode list has no pair of a class with {self.shots + 1} images")
        return self._ordered

    def __len__(self) -> int:
        if self._n is None:
            n = self._benchmark_episodes() if self._benchmark_episodes is not None else None
            n = self._default_episodes if n is None else n
            if n is None:
                n = len(self.ordered_pairs()) if self.policy == "list_order" else len(self.pairs())
            self._n = n
        return self._n

    def __getitem__(self, index: int) -> Episode:
        i = self._check_index(index)
        rng = self._rng(i)
        if self.policy in ("every_image", "list_order"):
            pairs = self.ordered_pairs() if self.policy == "list_order" else self.pairs()
            class_id, target = pairs[i % len(pairs)]
        else:
            classes = self.classes
            class_id = classes[i % len(classes)] if self.policy == "cycle_classes" else classes[int(rng.integers(len(classes)))]
            images = self.images(class_id)
            target = images[int(rng.integers(len(images)))]
        references = self._distinct(rng, self.images(class_id), self.shots, exclude=target)
        return Episode(index=i, class_id=class_id, target_id=target, reference_ids=references)

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def load(self, index: int) -> EpisodeData:
        """Episode ``index`` with its images and masks read from the source."""
        episode = self[index]
        source = self.source
        target_image = source.load_image(episode.target_id)
        target_mask = _checked(source.load_mask(episode.target_id, episode.class_id), target_image, f"mask of {episode.target_id!r}")
        ignore = source.load_ignore(episode.target_id)
        if ignore is not None:
            ignore = _checked(ignore, target_image, f"ignore mask of {episode.target_id!r}")
        reference_images = [source.load_image(ref) for ref in episode.reference_ids]
        reference_masks = [
            _checked(source.load_mask(ref, episode.class_id), image, f"mask of {ref!r}")
            for ref, image in zip(episode.reference_ids, reference_images)
        ]
        return EpisodeData(
            index=episode.index,
            class_id=episode.class_id,
            target_id=episode.target_id,
            reference_ids=episode.reference_ids,
            target_image=target_image,
            target_mask=target_mask,
            target_ignore=ignore,
            reference_images=reference_images,
            reference_masks=reference_masks,
        )

    def __repr__(self) -> str:
        return f"EpisodeSampler({self.source!r}, shots={self.shots}, policy={self.policy!r}, episodes={self._n}, seed={self.seed})"


class TrainingEpisodeSampler(_Sampler):
    """Deterministic training clips: one reference and ``targets`` (J) targets of one class.

    Args:
        dataset: a dataset name or a :class:`SegmentationSource` (its training split).
        fold: the fold whose training classes are used (when ``dataset`` is a name).
        targets: J >= 1 target images per clip (J + 1 distinct images).
        n_episodes: clips per pass; default one per distinct training image
            (``policy="every_image"``: one per ``(class, image)`` pair).
        seed: clip ``i`` depends only on ``(seed, i)``.
        split: the split to build (``"train"``).
        root: data root when ``dataset`` is a name.
        policy: ``"random_class"`` (a random class, then J + 1 random images) or
            ``"every_image"`` (pair ``i`` is the reference, targets drawn from its class).
        **options: passed to the dataset builder.
    """

    def __init__(
        self,
        dataset: DatasetLike,
        fold: int = 0,
        targets: int = 3,
        n_episodes: int | None = None,
        seed: int = 0,
        *,
        split: str = "train",
        root: str | os.PathLike | None = None,
        policy: str = "random_class",
        **options: Any,
    ) -> None:
        self.targets = _positive_int(targets, "targets")
        n_episodes = _positive_int(n_episodes, "n_episodes", allow_none=True)
        if policy not in ("random_class", "every_image"):
            raise ValueError(f"policy {policy!r}: expected 'random_class' or 'every_image'")
        source, _ = _resolve(dataset, fold=fold, split=split, root=root, options=options, shots=None)
        super().__init__(source=source, seed=seed)
        self.fold = fold
        self.split = getattr(source, "split", split)
        self.policy = policy
        self._n = n_episodes

    def _minimum_images(self) -> int:
        return self.targets + 1

    def __len__(self) -> int:
        if self._n is None:
            if self.policy == "every_image":
                self._n = len(self.pairs())
            else:
                self._n = len({image for c in self.classes for image in self.images(c)})
        return self._n

    def __getitem__(self, index: int) -> TrainingEpisode:
        i = self._check_index(index)
        rng = self._rng(i)
        if self.policy == "every_image":
            pairs = self.pairs()
            class_id, reference = pairs[i % len(pairs)]
            targets = self._distinct(rng, self.images(class_id), self.targets, exclude=reference)
        else:
            classes = self.classes
            class_id = classes[int(rng.integers(len(classes)))]
            images = self.images(class_id)
            reference = images[int(rng.integers(len(images)))]
            targets = self._distinct(rng, images, self.targets, exclude=reference)
        return TrainingEpisode(index=i, class_id=class_id, reference_id=reference, target_ids=targets)

    def __iter__(self) -> Iterator[TrainingEpisode]:
        return (self[i] for i in range(len(self)))

    def load(self, index: int) -> TrainingEpisodeData:
        """Clip ``index`` with its images and masks read from the source."""
        episode = self[index]
        source = self.source
        ref_image = source.load_image(episode.reference_id)
        ref_mask = _checked(source.load_mask(episode.reference_id, episode.class_id), ref_image, f"mask of {episode.reference_id!r}")
        images, masks, ignores = [], [], []
        for target in episode.target_ids:
            image = source.load_image(target)
            images.append(image)
            masks.append(_checked(source.load_mask(target, episode.class_id), image, f"mask of {target!r}"))
            ignore = source.load_ignore(target)
            ignores.append(None if ignore is None else _checked(ignore, image, f"ignore mask of {target!r}"))
        return TrainingEpisodeData(
            index=episode.index,
            class_id=episode.class_id,
            reference_ids=(episode.reference_id,),
            target_ids=episode.target_ids,
            reference_images=[ref_image],
            reference_masks=[ref_mask],
            target_images=images,
            target_masks=masks,
            target_ignores=ignores,
        )

    def __repr__(self) -> str:
        return f"TrainingEpisodeSampler({self.source!r}, targets={self.targets}, policy={self.policy!r}, seed={self.seed})"


class EpisodeDataset(Dataset):
    """A map-style torch ``Dataset`` of loaded episodes, optionally one rank's shard.

    ``dataset[j]`` is ``sampler.load(sampler.indices(rank, world_size)[j])``; use it with
    ``DataLoader(..., collate_fn=collate_episodes)``. Any ``num_workers`` gives the same
    episodes, since each one depends only on its index.
    """

    def __init__(self, sampler: EpisodeSampler | TrainingEpisodeSampler, *, rank: int = 0, world_size: int = 1) -> None:
        self.sampler = sampler
        self.indices = sampler.indices(rank, world_size)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> EpisodeData | TrainingEpisodeData:
        return self.sampler.load(self.indices[j])


def collate_episodes(batch: list[Any]) -> list[Any]:
    """``collate_fn`` that keeps a batch as a list of episodes (their images differ in size)."""
    return list(batch)
