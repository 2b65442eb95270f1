"""SAM2, SANSA and DINOv2 (or any encoders) side by side on the paper's probes: the body of
``experiments/encoders_sam2_sansa_dinov2.py``.

The six probe commands run with ``--encoders`` (default ``sam2,sansa,`` + DINOv2 ViT-S/14 from
timm, :data:`DINOV2`) in the paper's setting (COCO-20i fold 0; Pascal-Part for part matching;
frames for table 12), or offline on the procedural benchmark with the shipped miniature
(:func:`~sansa_probe.paper.probes.run_probe_script`). Offline, DINOv2's weights are not on disk:
its architecture runs with RANDOM weights instead, said in a note and in every output (identity
column, footnotes, ``config.json`` warnings). ``encoders.csv`` holds each probe's headline
numbers per encoder (:func:`~sansa_probe.pipelines.encoders.encoder_summary`), printed as a
table with one column per encoder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sansa_probe import linear_probe, part_matching, pca, pca_rgb, projection, spatial_coherence
from sansa_probe.features.sources import parse_encoders, random_where_missing
from sansa_probe.io.atomic import atomic_write_text
from sansa_probe.paper.probes import run_probe_script
from sansa_probe.pipelines import read_tables
from sansa_probe.pipelines.encoders import encoder_summary
from sansa_probe.pipelines.redraw import pipeline_of

__all__ = ["DEFAULT_ENCODERS", "DINOV2", "STEPS", "compare_encoders", "summarise"]

DINOV2 = "timm:vit_small_patch14_dinov2.lvd142m"  # Meta's DINOv2 ViT-S/14 weights, as timm hosts them on the Hugging Face hub
DEFAULT_ENCODERS = f"sam2,sansa,{DINOV2}"

COCO = ["--dataset", "coco20i", "--fold", "0"]
STEPS = [  # (command, the paper's options, subfolder, kind), as the figure scripts run them
    (pca, COCO, "pca", "probe"),
    (projection, [*COCO, "--split", "val"], "projection", "probe"),
    (pca_rgb, [*COCO, "--split", "val", "--n-images", "3"], "pca_rgb", "probe"),
    (linear_probe, COCO, "linear_probe", "probe"),
    (part_matching, ["--dataset", "pascal_part", "--fold", "0", "--split", "val", "--max-pairs", "8"], "part_matching", "probe"),
    (spatial_coherence, [], "spatial_coherence", "frames"),
]
SMALL = {"part_matching": ["--max-pairs", "2", "--feature-size", "32", "--clusters", "3"],  # objects of a few cells: upsampled features
         "spatial_coherence": ["--videos", "2", "--frames-per-video", "3", "--video-size", "64"]}


def _take_encoders(argv: list[str]) -> tuple[str, list[str]]:
    """``--encoders`` (default :data:`DEFAULT_ENCODERS`) taken out of ``argv``."""
    rest, encoders, i = [], DEFAULT_ENCODERS, 0
    while i < len(argv):
        if argv[i] == "--encoders" and i + 1 < len(argv):
            encoders, i = argv[i + 1], i + 1
        elif argv[i].startswith("--encoders="):
            encoders = argv[i].split("=", 1)[1]
        else:
            rest.append(argv[i])
        i += 1
    return encoders, rest


def summarise(out: str | Path) -> Path:
    """``<out>/encoders.csv`` from the six commands' folders (one row per probe, metric, setting
    and encoder, with its identity), printed as one column per encoder; returns the file."""
    out = Path(out)
    results = {}
    for command, _, folder, _ in STEPS:
        if (out / folder / "config.json").is_file():
            results[folder] = read_tables(out / folder, pipeline_of(command.__name__).TABLES)
    summary = encoder_summary(results)
    path = atomic_write_text(out / "encoders.csv", summary.to_csv(index=False))
    print(encoder_summary(results, wide=True).to_string(index=False))
    for identity in dict.fromkeys(summary["identity"]):
        print(f"  {identity}")
    return path


def compare_encoders(argv: list[str]) -> int:
    """Run the six probes with the encoders of ``--encoders`` into ``--out`` (default
    ``results/encoders``), then :func:`summarise`. ``--small`` shrinks the offline run."""
    text, rest = _take_encoders(argv)
    specs, notes = random_where_missing(parse_encoders(text))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    encoders = ",".join(spec.name for spec in specs)
    small = "--small" in rest
    steps = [(command, [*paper, *(SMALL.get(folder, []) if small else []), "--encoders", encoders], folder, kind)
             for command, paper, folder, kind in STEPS]
    return run_probe_script("encoders", steps, rest, after=summarise, writes=("encoders.csv",))
