"""Write the notebooks of this folder with nbformat: ``python notebooks/make_notebooks.py``.

The committed ``.ipynb`` files are exactly what this script writes (no outputs; a test checks
that they do not drift). Each notebook only calls the package and shows its tables and figures.
Its first code cell, tagged ``parameters`` (papermill's convention), holds plain assignments:
offline defaults on the shipped miniature SAM2 and the procedural benchmark, small enough to run
in well under two minutes on one CPU thread; its comments say what to set for the paper's
setting. Every parameter can be set from the environment (``SANSA_NB_<NAME>``, see
``sansa_probe.notebook_support.params``) or with ``papermill -p NAME VALUE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

IMPORT = "from sansa_probe.notebook_support.params import from_environment\n\n"
# After the assignments; papermill's parameter inspection ignores this line (not NAME = value).
OVERRIDES = '''\
# Each name above: SANSA_NB_<NAME> in the environment, or papermill -p NAME VALUE (papermill wins).
globals().update(from_environment(globals(), prefix="SANSA_NB_"))
'''

MODEL = '''\
# Model, as the commands' options. On the procedural benchmark these defaults are the shipped
# miniature SAM2 (128 px, offline, no download) with the SANSA adapters of FOLD: a toy, not the
# paper's model. MODEL = "miniature" picks it for any data (your own images too), "sam2" Meta's SAM2.
# The paper's setting: MODEL = "sam2"; BACKBONE = "hiera_l"; IMAGE_SIZE = 1024; SAM2_CHECKPOINT = "auto"
# (Meta's weights, downloaded once); CHECKPOINT = a strict SANSA checkpoint of this fold, e.g.
# "checkpoints/strict/coco20i/fold0.pt" (README, "Real weights": where the published ones are).
MODEL = None  # None: the miniature on the procedural benchmark, else SAM2; "miniature" or "sam2" to choose
BACKBONE = None
IMAGE_SIZE = None
SAM2_CHECKPOINT = "auto"  # "auto", None (random weights: a smoke test) or a path
CHECKPOINT = None  # None: fresh adapters, i.e. frozen SAM2 (outside the miniature default)
DEVICE = None  # None: CUDA when available, else the CPU
PROGRESS = True  # progress bars
'''

DATA = '''\
# Data: the procedural benchmark (nothing on disk). The paper: DATASET = "coco20i";
# DATA_ROOT = "/data" (or $SANSA_DATA); DATASET_OPTIONS = {}; IMAGES_PER_CLASS = 50.
DATASET = "synthetic"
FOLD = 0
DATA_ROOT = None
DATASET_OPTIONS = {"image_size": 128, "images_per_class": 12}
IMAGES_PER_CLASS = 6
'''

BUILD = ("model = build_model(dataset={dataset}, fold=FOLD, backbone=BACKBONE, sam2_checkpoint=SAM2_CHECKPOINT, image_size=IMAGE_SIZE,\n"
         "                    checkpoint=CHECKPOINT, device=DEVICE, model=MODEL)\n"
         "print(identity_line(model_identity(model)))")  # fmt: skip

PROBE_SETUP = f'''\
%matplotlib inline
from IPython.display import display

from sansa_probe.features import MODELS, FeatureExtractor
from sansa_probe.reporting.identity import identity_line, model_identity
from sansa_probe.notebook_support.figures import footnoted
from sansa_probe.notebook_support.params import build_model

{BUILD.format(dataset="DATASET")}
extractor = FeatureExtractor(model, batch_size=BATCH_SIZE, progress=PROGRESS, cache_dir=CACHE_DIR)
print(extractor.default_layer(), "of", len(extractor.available_layers()), "hookable layers")
'''

PROBE_RUN = '''\
BATCH_SIZE = 16
CACHE_DIR = None  # a folder: features cached there per model state, layer, dataset, fold and split
'''


def notebook(title: str, text: str, parameters: str, cells: list[tuple[str, str]], *, setup: str = PROBE_SETUP) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(new_markdown_cell(f"# {title}\n\n{text}"))
    nb.cells.append(new_code_cell(IMPORT + parameters + "\n" + OVERRIDES, metadata={"tags": ["parameters"]}))
    nb.cells.append(new_code_cell(setup))
    for kind, source in cells:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives the same files
    return nb


QUICKSTART = notebook(
    "Quickstart: segment your images from k annotated references",
    "SANSA segments every target image from k reference images annotated with any prompt (mask, "
    "points, box or scribble). By default the references and targets are images of one novel class "
    "of the procedural benchmark, on the shipped miniature SAM2 with its SANSA adapters, beside "
    "frozen SAM2 (the same model with its adapters off). For your own images set `IMAGES` to a "
    "folder holding `images/<image>.jpg` and `masks/<image>_<class>.png` (the `folder` dataset) "
    "and a model: `MODEL = \"miniature\"` runs the shipped miniature on them offline (a toy: it shows "
    "the code at work, not SANSA's quality), or a real one (see the model parameters); `PROMPTS` gives "
    "prompts by hand and `TARGETS` a folder of further images to segment. The same as "
    "`python -m sansa_probe.segment --model miniature --reference ... --target ...`.",
    '''\
# Images: None = the procedural benchmark; or a folder with images/ and masks/<image>_<class>.png.
IMAGES = None
CLASS = None  # class id or name; None: the first class with enough images
SHOTS = 2  # k references
TARGETS_SHOWN = 4  # annotated targets of the class to segment (ground truth shown)
TARGETS = None  # a folder of further images to segment (no ground truth)
PROMPT = "mask"  # prompt generated from each reference mask: "mask", "point", "box" or "scribble"
PROMPTS = None  # or by hand, one per reference: [{"box": [x0, y0, x1, y1]}, {"points": [[x, y]]}, {"mask": "a.png"}]
FOLD = 0
IMAGE_SIZE_SYNTHETIC = 128  # procedural images' size
SEED = 0
''' + MODEL,
    [
        ("code", "example = few_shot_example(IMAGES, fold=FOLD, class_id=CLASS, shots=SHOTS, targets=TARGETS_SHOWN, prompt=PROMPT,\n"
                 "                           prompts=PROMPTS, extra_targets=TARGETS, image_size=IMAGE_SIZE_SYNTHETIC, seed=SEED)\n"
                 "print(example.summary())"),
        ("md", "Set the references once (their memory is encoded once per adapter state), then segment every target; "
               "frozen SAM2 is the same predictor with the model's adapters switched off."),
        ("code", "predictor = SansaPredictor(model)\npredictor.set_references(example.reference_images, example.prompts)\n"
                 "sansa = predictor.predict_batch(example.target_images)\nwith model.adapters(False):\n"
                 "    frozen = predictor.predict_batch(example.target_images)\n"
                 "footnoted(plot_few_shot(example, {\"SANSA\": [p.mask for p in sansa], \"frozen SAM2\": [p.mask for p in frozen]}), model)"),
        ("md", "Per target: where the ground truth is known, the IoU (%); SAM2's own IoU estimate (score) where it varies "
               "across targets (a score equal for every target says nothing and is left out, with a note)."),
        ("code", "table = target_table(example, {\"SANSA\": sansa, \"frozen SAM2\": frozen})\nprint(*table.attrs[\"notes\"], sep=\"\\n\")\ntable"),
    ],
    setup=f'''\
%matplotlib inline
from sansa_probe.reporting.identity import identity_line, model_identity
from sansa_probe.notebook_support.params import build_model
from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.notebook_support.figures import footnoted
from sansa_probe.notebook_support.quickstart import few_shot_example, plot_few_shot, target_table

{BUILD.format(dataset='"synthetic" if IMAGES is None else "folder"')}
''',
)

FEATURE_SPACE = notebook(
    "Figures 2, 4 and 8: the semantic structure of the feature space",
    "(a) 2-D PCA of object features coloured by class (fig. 4a, `python -m sansa_probe.projection`); "
    "(b) dense features as colours, 3 principal components fitted jointly across images (figs. 2 "
    "and 4b, `python -m sansa_probe.pca_rgb`); (c) is class information concentrated in the leading "
    "principal components? Nearest-centroid accuracy of the fold's evaluation classes vs the number "
    "of components (fig. 8, appendix B.1, `python -m sansa_probe.pca`). Frozen SAM2 and SANSA are "
    "one model with its adapters off / on. Part matching (fig. 4c) has its own notebook.",
    DATA + "SPLIT = \"val\"\nN_IMAGES = 3\nFEATURE_SIZE = 32\n" + PROBE_RUN + MODEL,
    [
        ("code", "from sansa_probe.data import get_dataset\nfrom sansa_probe.features import dataset_images, probe_splits\n"
                 "from sansa_probe.pipelines import pca, pca_rgb, projection\n\n"
                 "source = get_dataset(DATASET, fold=FOLD, split=SPLIT, root=DATA_ROOT, **DATASET_OPTIONS)"),
        ("md", "## (a) Object features, first two principal components"),
        ("code", "projected = projection.compute(extractor, source, models=MODELS, images_per_class=IMAGES_PER_CLASS)\n"
                 "display(projected['scores'])\nfootnoted(projection.figures(projected)['projection'], model)"),
        ("md", "## (b) PCA to RGB, fitted jointly across images"),
        ("code", "ids, images, masks = dataset_images(source, n_images=N_IMAGES)\n"
                 "colours = pca_rgb.compute(extractor, images, masks, models=MODELS, image_ids=ids, feature_size=FEATURE_SIZE)\n"
                 "display(colours['scores'])\nfootnoted(pca_rgb.figures(colours, dict(zip(ids, images)))['pca_rgb'], model)"),
        ("md", "## (c) Semantic information across principal components (fig. 8)\n\n"
               "Summary: area under the relative-accuracy curve (1 = full accuracy from 2 components on) and the "
               "full-dimension accuracy (chance is 1 / number of classes: near it, the curve measures nothing)."),
        ("code", "splits = probe_splits(DATASET, FOLD, root=DATA_ROOT, **DATASET_OPTIONS)\n"
                 "print('classes', splits.classes, '- training images from fold', splits.train_fold)\n"
                 "concentration = pca.compute(extractor, splits, models=MODELS, images_per_class=IMAGES_PER_CLASS)\n"
                 "display(concentration['summary'])\nfootnoted(pca.figures(concentration)['fig8'], model, warnings=pca.check(concentration))"),
    ],
)

LINEAR_PROBE = notebook(
    "Figure 9 (left): linear probing for semantic segmentation",
    "Appendix B.2. A 1x1 linear layer on frozen dense features, trained on training images of the "
    "fold's evaluation classes and scored by mIoU on the fold's val images, for frozen SAM2 and "
    "SANSA. The same as `python -m sansa_probe.linear_probe`. The right half of fig. 9 is "
    "`python -m sansa_probe.compare` (frozen vs SANSA few-shot mIoU on the same episodes).",
    DATA + "EPOCHS = 5\n" + PROBE_RUN + MODEL,
    [
        ("code", "from sansa_probe.features import probe_splits\nfrom sansa_probe.pipelines import linear_probe\n\n"
                 "splits = probe_splits(DATASET, FOLD, root=DATA_ROOT, **DATASET_OPTIONS)\n"
                 "tables = linear_probe.compute(extractor, splits, models=MODELS, images_per_class=IMAGES_PER_CLASS, epochs=EPOCHS)"),
        ("code", "display(tables['summary'])\nfootnoted(linear_probe.figures(tables)['linear_probe'], model, warnings=linear_probe.check(tables))"),
        ("md", "Per-class IoU (%): a probe that predicts background everywhere scores background IoU / number of classes."),
        ("code", "tables['linear_probe'].query(\"metric == 'iou'\").pivot(index='class_name', columns='model', values='value')"),
    ],
)

PART_MATCHING = notebook(
    "Figure 4c: part clusters matched across image pairs",
    "K-means clusters of each object's dense features, matched across two images of the same class "
    "(Hungarian matching of cluster centroids), for frozen SAM2 and SANSA. The same as "
    "`python -m sansa_probe.part_matching`. Part agreement (matched clusters whose part names agree) "
    "needs part annotations: `DATASET = \"pascal_part\"` or `\"paco_part\"`; elsewhere it is NaN.",
    DATA + "SPLIT = \"val\"\nMAX_PAIRS = 3\nCLUSTERS = 5\nFEATURE_SIZE = 32\n" + PROBE_RUN + MODEL,
    [
        ("code", "from sansa_probe.data import get_dataset\nfrom sansa_probe.pipelines import part_matching\n"
                 "from sansa_probe.probes.object_pairs import dataset_pairs\n\n"
                 "source = get_dataset(DATASET, fold=FOLD, split=SPLIT, root=DATA_ROOT, **DATASET_OPTIONS)\n"
                 "pairs = dataset_pairs(source, max_pairs=MAX_PAIRS)\n"
                 "matched = part_matching.compute(extractor, pairs, models=MODELS, feature_size=FEATURE_SIZE, n_clusters=CLUSTERS)\n"
                 "display(matched['summary'])"),
        ("code", "pictures = {i: image for pair in pairs for i, image in zip(pair.image_ids, pair.images)}\n"
                 "footnoted(part_matching.figures(matched, pictures)['part_matching'], model, warnings=part_matching.check(matched))"),
    ],
)

SPATIAL_COHERENCE = notebook(
    "Table 12: spatial coherence as continuity breaks",
    "Appendix G. Nearest-neighbour feature matches between consecutive frames, frames with a "
    "mirrored target, and unrelated images; the mean first-order gradient of the displacement field "
    "(lower is smoother), for frozen SAM2 and SANSA. The same as "
    "`python -m sansa_probe.spatial_coherence`. By default synthetic pseudo-videos; set `FRAMES` to "
    "frame folders (DAVIS sequences, or a folder of consecutive video frames), `MASKS` to their "
    "annotation folders and `INDEPENDENT` to a folder of unrelated image pairs (TSS), and a real model.",
    "FRAMES = None  # e.g. [\"/data/DAVIS/JPEGImages/480p/bear\"]\nMASKS = None  # e.g. [\"/data/DAVIS/Annotations/480p/bear\"]\n"
    "INDEPENDENT = None  # e.g. \"/data/TSS/pairs\"\nVIDEOS = 2\nFRAMES_PER_VIDEO = 4\nVIDEO_SIZE = 128\nMAX_PAIRS = 8\n"
    "FOLD = 0  # the miniature's adapters\n" + PROBE_RUN + MODEL,
    [
        ("code", "from sansa_probe.pipelines import spatial_coherence\nfrom sansa_probe.probes.frame_pairs import folder_pairs, synthetic_pairs\n\n"
                 "pairs = (folder_pairs(FRAMES, MASKS, independent=INDEPENDENT, max_pairs=MAX_PAIRS) if FRAMES else\n"
                 "         synthetic_pairs(n_videos=VIDEOS, n_frames=FRAMES_PER_VIDEO, image_size=VIDEO_SIZE, max_pairs=MAX_PAIRS))\n"
                 "tables = spatial_coherence.compute(extractor, pairs, models=MODELS)"),
        ("md", "Mean smoothness per setting (pixels per pixel; lower is better), in the paper's layout."),
        ("code", "display(tables['table12'])"),
        ("code", "footnoted(spatial_coherence.figures(tables)['spatial_coherence'], model)"),
    ],
    setup=PROBE_SETUP.replace("dataset=DATASET", "dataset=None if FRAMES else \"synthetic\""),
)

ENCODERS = notebook(
    "SAM2, SANSA and DINOv2 (or any encoder) on the paper's probes",
    "Where do semantics live? The paper argues that SAM2 holds latent semantics that SANSA's adapters "
    "make explicit, and contrasts it with DINOv2 (strong semantics, sparse matches). Here the same "
    "objects go through the same probes for every encoder in `ENCODERS`: frozen SAM2 and SANSA (one "
    "model, adapters off / on) and DINOv2 ViT-S/14 (or any `timm:<model name>` or "
    "`hub:<owner/repo>:<entry>`), each pooled on its own feature grid at its own output layer. "
    "Offline, DINOv2's weights are not on disk: its architecture runs with RANDOM weights instead, "
    "said below and in every table row (`identity`) and figure footnote, so its numbers are a smoke "
    "test. The same as `python -m sansa_probe.<probe> --encoders ...` and "
    "`experiments/encoders_sam2_sansa_dinov2.py`.",
    '''\
# Encoders, comma-separated: sam2, sansa, timm:<model name>[:random], hub:<owner/repo>:<entry>[:random]
# (e.g. timm:vit_base_patch16_clip_224.openai, hub:facebookresearch/dinov2:dinov2_vitb14).
ENCODERS = "sam2,sansa,timm:vit_small_patch14_dinov2.lvd142m"
LAYER = None  # None: the output layer of every encoder; other values as the --layer option of the probe commands
''' + DATA + "SPLIT = \"val\"\nN_IMAGES = 3\nEPOCHS = 5\nVIDEOS = 2\nFRAMES_PER_VIDEO = 4\nVIDEO_SIZE = 128\nMAX_PAIRS = 8\n" + PROBE_RUN + MODEL,
    [
        ("code", "from sansa_probe.data import get_dataset\nfrom sansa_probe.features import dataset_images, probe_splits\n"
                 "from sansa_probe.notebook_support.encoders import notebook_encoders\n"
                 "from sansa_probe.pipelines import linear_probe, pca, pca_rgb, projection, spatial_coherence\n"
                 "from sansa_probe.pipelines.encoders import encoder_summary\n"
                 "from sansa_probe.probes.frame_pairs import synthetic_pairs\n\n"
                 "encoders = notebook_encoders(ENCODERS, extractor)\n"
                 "splits = probe_splits(DATASET, FOLD, root=DATA_ROOT, **DATASET_OPTIONS)\n"
                 "source = get_dataset(DATASET, fold=FOLD, split=SPLIT, root=DATA_ROOT, **DATASET_OPTIONS)"),
        ("md", "## (a) Semantic information across principal components (fig. 8), one curve per encoder"),
        ("code", "concentration = pca.compute(encoders, splits, layer=LAYER, images_per_class=IMAGES_PER_CLASS)\n"
                 "display(concentration['summary'])\nfootnoted(pca.figures(concentration)['fig8'], encoders, warnings=pca.check(concentration))"),
        ("md", "## (b) Linear probing for semantic segmentation (fig. 9 left)"),
        ("code", "probed = linear_probe.compute(encoders, splits, layer=LAYER, images_per_class=IMAGES_PER_CLASS, epochs=EPOCHS)\n"
                 "display(probed['summary'])\nfootnoted(linear_probe.figures(probed)['linear_probe'], encoders, warnings=linear_probe.check(probed))"),
        ("md", "## (c) Object features, first two principal components (fig. 4a), one panel per encoder"),
        ("code", "projected = projection.compute(encoders, source, layer=LAYER, images_per_class=IMAGES_PER_CLASS)\n"
                 "footnoted(projection.figures(projected)['projection'], encoders)"),
        ("md", "## (d) PCA to RGB (figs. 2, 4b), one row per encoder, each on its own grid"),
        ("code", "ids, images, masks = dataset_images(source, n_images=N_IMAGES)\n"
                 "colours = pca_rgb.compute(encoders, images, masks, layer=LAYER, image_ids=ids)\n"
                 "footnoted(pca_rgb.figures(colours, dict(zip(ids, images)))['pca_rgb'], encoders)"),
        ("md", "## (e) Spatial coherence of feature matches (table 12; lower is smoother)"),
        ("code", "pairs = synthetic_pairs(n_videos=VIDEOS, n_frames=FRAMES_PER_VIDEO, image_size=VIDEO_SIZE, max_pairs=MAX_PAIRS)\n"
                 "coherence = spatial_coherence.compute(encoders, pairs, layer=LAYER)\ndisplay(coherence['table12'])"),
        ("md", "## Every probe's headline number, one column per encoder"),
        ("code", "results = {'pca': concentration, 'linear_probe': probed, 'projection': projected, 'pca_rgb': colours,\n"
                 "           'spatial_coherence': coherence}\nencoder_summary(results, wide=True)"),
    ],
)

REPRODUCE = notebook(
    "Reproduce the paper's tables: our numbers beside the paper's",
    "`sansa_probe.paper` holds the paper's printed numbers; `side_by_side` puts ours beside them "
    "with the difference. Here ours come from the shipped miniature SAM2 on the procedural benchmark, "
    "so the paper's column is context, not a target (rows flagged `reference_only`): first the "
    "miniature's measured results as shipped (100 episodes per fold, all four folds), then a fresh "
    "measurement of frozen SAM2 and SANSA on `EPISODES` episodes of `FOLD`. Every table and figure "
    "of the paper has a script in `experiments/` (paper setting with data and checkpoints, the "
    "procedural benchmark without), e.g. `python experiments/table9_sequence_length.py --small`.",
    "TABLES = [\"table1\", \"fig9\", \"fig8\"]  # tables shown from the shipped results\nFOLD = 0\n"
    "EPISODES = 100  # fresh episodes per model; 100 at SEED 0 is the shipped measurement (fewer leave classes unsampled)\nSHOTS = 1\nSEED = 0\n"
    "DEVICE = None  # None: CUDA when available, else the CPU\nPROGRESS = True\n",
    [
        ("md", "## The miniature's shipped results beside the paper"),
        ("code", "ours = shipped_ours()\nfor table in TABLES:\n    print(TABLE_TITLES[table])\n    display(side_by_side(ours, table))"),
        ("code", "plot_side_by_side(side_by_side(ours, \"table1\"));"),
        ("md", "## Measured now: frozen SAM2 and SANSA on the same episodes"),
        ("code", "model = build_model(dataset=\"synthetic\", fold=FOLD, device=DEVICE)\nprint(identity_line(model_identity(model)))\n"
                 "measured = measured_ours(model, fold=FOLD, episodes=EPISODES, shots=SHOTS, seed=SEED, progress=PROGRESS)\n"
                 "compared = side_by_side(measured, \"table1\")\ndisplay(compared)\nprint(format_side_by_side(compared, \"table1\"))"),
    ],
    setup='''\
%matplotlib inline
from IPython.display import display

from sansa_probe.reporting.identity import identity_line, model_identity
from sansa_probe.notebook_support.params import build_model
from sansa_probe.paper import TABLE_TITLES, format_side_by_side, side_by_side
from sansa_probe.paper.compare import plot_side_by_side
from sansa_probe.paper.miniature import measured_ours, shipped_ours
''',
)

NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "feature_space.ipynb": FEATURE_SPACE,
    "linear_probe.ipynb": LINEAR_PROBE,
    "part_matching.ipynb": PART_MATCHING,
    "spatial_coherence.ipynb": SPATIAL_COHERENCE,
    "encoders.ipynb": ENCODERS,
    "reproduce_tables.ipynb": REPRODUCE,
}


def render(nb: nbformat.NotebookNode) -> str:
    """The file text of ``nb`` as written (nbformat's JSON, a final newline)."""
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write every notebook; ``--check`` only compares and returns 1 when a file differs."""
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for name, nb in NOTEBOOKS.items():
        path = HERE / name
        text = render(nb)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run python notebooks/make_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
