"""Write the notebooks of this folder with nbformat: ``python notebooks/make_notebooks.py``.

Each notebook only calls the package (``sansa_probe.<probe>.compute`` and ``.figures``) and shows
its tables and figures. The first code cell (tagged ``parameters``, papermill-style) runs the
procedural benchmark with a Hiera-T at 256 px by default; its comments say what to set for the
paper's setting (COCO-20i / DAVIS, Hiera-L at 1024 px, a strict checkpoint per fold).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

MODEL_PARAMETERS = '''\
# Model: a Hiera-T at 256 px with Meta's SAM2.1 weights (downloaded once into the torch hub cache).
# The paper: BACKBONE = "hiera_l"; IMAGE_SIZE = 1024. SAM2_CHECKPOINT = None gives random weights
# (offline smoke tests: the numbers then mean nothing).
BACKBONE = "hiera_t"
IMAGE_SIZE = 256
SAM2_CHECKPOINT = "auto"
# SANSA adapters: a strict checkpoint of this fold, e.g. "checkpoints/strict/coco20i/fold0.pt" (see
# `python -m sansa_probe.train --dataset synthetic --backbone hiera_t --image-size 256 ...`);
# None: fresh adapters, which act as a no-op (SANSA rows then equal SAM2's).
CHECKPOINT = None
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BATCH_SIZE = 8
CACHE_DIR = "feature_cache"  # features are cached here per model state, layer, dataset, fold and split
'''

DATA_PARAMETERS = '''\
# Data: the procedural benchmark (nothing on disk). For the paper: DATASET = "coco20i";
# DATA_ROOT = "/data" (or $SANSA_DATA); DATASET_OPTIONS = {}; IMAGES_PER_CLASS = None (all images).
DATASET = "synthetic"
FOLD = 0
DATA_ROOT = None
DATASET_OPTIONS = {"image_size": 256, "images_per_class": 20}
IMAGES_PER_CLASS = 20
'''

SETUP = '''\
%matplotlib inline
from IPython.display import display

from sansa_probe.features import MODELS, FeatureExtractor
from sansa_probe.model import load_sansa

model = load_sansa(BACKBONE, image_size=IMAGE_SIZE, sam2_checkpoint=SAM2_CHECKPOINT, adapters=CHECKPOINT, device=DEVICE)
extractor = FeatureExtractor(model, batch_size=BATCH_SIZE, progress=True, cache_dir=CACHE_DIR)
print(extractor.default_layer(), "of", len(extractor.available_layers()), "hookable layers")
'''


def notebook(title: str, text: str, parameters: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(new_markdown_cell(f"# {title}\n\n{text}"))
    nb.cells.append(new_code_cell("import torch\n\n" + parameters, metadata={"tags": ["parameters"]}))
    nb.cells.append(new_code_cell(SETUP))
    for kind, source in cells:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives the same files
    return nb


NOTEBOOKS = {
    "fig8_pca_concentration.ipynb": notebook(
        "Figure 8: semantic information across principal components",
        "Appendix B.1. Object features of the fold's evaluation classes (unseen by a strict SANSA of "
        "this fold); class centroids from training images of those classes, nearest-centroid accuracy "
        "of the val objects vs the number of principal components, for frozen SAM2 and SANSA (one "
        "model, adapters off / on). The same as `python -m sansa_probe.pca`.",
        DATA_PARAMETERS + MODEL_PARAMETERS,
        [
            ("code", "from sansa_probe.features import probe_splits\nfrom sansa_probe.pipelines import pca\n\n"
                     "splits = probe_splits(DATASET, FOLD, root=DATA_ROOT, **DATASET_OPTIONS)\n"
                     "print('classes', splits.classes, '- training images from fold', splits.train_fold)\n"
                     "tables = pca.compute(extractor, splits, models=MODELS, images_per_class=IMAGES_PER_CLASS)"),
            ("md", "Summary: area under the relative-accuracy curve (1 = full accuracy from 2 components on)."),
            ("code", "display(tables['summary'])"),
            ("code", "pca.figures(tables)['fig8']"),
            ("code", "tables['pca_concentration'].query(\"metric == 'relative_accuracy'\")"
                     ".pivot(index='n_components', columns='model', values='value').head(20)"),
        ],
    ),
    "fig4_feature_space.ipynb": notebook(
        "Figures 2 and 4: the semantic structure of the feature space",
        "(a) 2-D PCA of object features coloured by class (`python -m sansa_probe.projection`); "
        "(b) dense features as colours, 3 principal components fitted jointly across images "
        "(`python -m sansa_probe.pca_rgb`, also fig. 2); (c) K-means parts matched across image pairs "
        "(`python -m sansa_probe.part_matching`; part agreement needs `pascal_part` or `paco_part`).",
        DATA_PARAMETERS + "SPLIT = \"val\"\nN_IMAGES = 3\nMAX_PAIRS = 4\nFEATURE_SIZE = 32\n" + MODEL_PARAMETERS,
        [
            ("code", "from sansa_probe.data import get_dataset\nfrom sansa_probe.features import dataset_images\n"
                     "from sansa_probe.pipelines import part_matching, pca_rgb, projection\nfrom sansa_probe.probes.object_pairs import dataset_pairs\n\n"
                     "source = get_dataset(DATASET, fold=FOLD, split=SPLIT, root=DATA_ROOT, **DATASET_OPTIONS)"),
            ("md", "## (a) Object features, first two principal components"),
            ("code", "projected = projection.compute(extractor, source, models=MODELS, images_per_class=IMAGES_PER_CLASS)\n"
                     "display(projected['scores'])\nprojection.figures(projected)['projection']"),
            ("md", "## (b) PCA to RGB, fitted jointly across images"),
            ("code", "ids, images, masks = dataset_images(source, n_images=N_IMAGES)\n"
                     "colours = pca_rgb.compute(extractor, images, masks, models=MODELS, image_ids=ids, feature_size=FEATURE_SIZE)\n"
                     "display(colours['scores'])\npca_rgb.figures(colours, dict(zip(ids, images)))['pca_rgb']"),
            ("md", "## (c) Part clusters matched across image pairs"),
            ("code", "pairs = dataset_pairs(source, max_pairs=MAX_PAIRS)\n"
                     "matched = part_matching.compute(extractor, pairs, models=MODELS, feature_size=FEATURE_SIZE)\n"
                     "display(matched['summary'])\n"
                     "pictures = {i: image for pair in pairs for i, image in zip(pair.image_ids, pair.images)}\n"
                     "part_matching.figures(matched, pictures)['part_matching']"),
        ],
    ),
    "fig9_linear_probe.ipynb": notebook(
        "Figure 9 (left): linear probing for semantic segmentation",
        "Appendix B.2. A 1x1 linear layer on frozen dense features, trained on training images of the "
        "fold's evaluation classes and scored by mIoU on the fold's val images, for frozen SAM2 and "
        "SANSA. The same as `python -m sansa_probe.linear_probe`. The right half of fig. 9 is "
        "`python -m sansa_probe.evaluate --adapters on|off`.",
        DATA_PARAMETERS + "EPOCHS = 10\n" + MODEL_PARAMETERS,
        [
            ("code", "from sansa_probe.features import probe_splits\nfrom sansa_probe.pipelines import linear_probe\n\n"
                     "splits = probe_splits(DATASET, FOLD, root=DATA_ROOT, **DATASET_OPTIONS)\n"
                     "tables = linear_probe.compute(extractor, splits, models=MODELS, images_per_class=IMAGES_PER_CLASS, epochs=EPOCHS)"),
            ("code", "display(tables['summary'])\nlinear_probe.figures(tables)['linear_probe']"),
            ("code", "tables['linear_probe'].query(\"metric == 'iou'\").pivot(index='class_name', columns='model', values='value')"),
        ],
    ),
    "table12_spatial_coherence.ipynb": notebook(
        "Table 12: spatial coherence as continuity breaks",
        "Appendix G. Nearest-neighbour feature matches between consecutive frames, frames with a "
        "mirrored target, and unrelated images; the mean first-order gradient of the displacement field "
        "(lower is smoother), for frozen SAM2 and SANSA. The same as "
        "`python -m sansa_probe.spatial_coherence`. By default synthetic pseudo-videos; set `FRAMES` to "
        "frame folders (DAVIS sequences, or a folder of consecutive video frames), `MASKS` to their annotation "
        "folders and `INDEPENDENT` to a folder of unrelated image pairs (TSS).",
        "FRAMES = None  # e.g. [\"/data/DAVIS/JPEGImages/480p/bear\"]\nMASKS = None  # e.g. [\"/data/DAVIS/Annotations/480p/bear\"]\n"
        "INDEPENDENT = None  # e.g. \"/data/TSS/pairs\"\nVIDEOS, FRAMES_PER_VIDEO, VIDEO_SIZE = 3, 8, 256\nMAX_PAIRS = 20\n" + MODEL_PARAMETERS,
        [
            ("code", "from sansa_probe.pipelines import spatial_coherence\nfrom sansa_probe.probes.frame_pairs import folder_pairs, synthetic_pairs\n\n"
                     "pairs = (folder_pairs(FRAMES, MASKS, independent=INDEPENDENT, max_pairs=MAX_PAIRS) if FRAMES else\n"
                     "         synthetic_pairs(n_videos=VIDEOS, n_frames=FRAMES_PER_VIDEO, image_size=VIDEO_SIZE, max_pairs=MAX_PAIRS))\n"
                     "tables = spatial_coherence.compute(extractor, pairs, models=MODELS)"),
            ("md", "Mean smoothness per setting (pixels per pixel; lower is better), in the paper's layout."),
            ("code", "display(tables['table12'])"),
            ("code", "spatial_coherence.figures(tables)['spatial_coherence']"),
        ],
    ),
}


def main() -> int:
    for name, nb in NOTEBOOKS.items():
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
