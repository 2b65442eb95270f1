"""``python -m sansa_probe.annotate``: COCO output equal to the predictor's masks, one encoder pass per
target whatever the number of classes, resume after SIGKILL, skipped files, torchrun, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, blob_image
from PIL import Image
from pycocotools.coco import COCO

from sansa_probe import annotate
from sansa_probe.annotation import load_references
from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.prompts.types import Box, Mask, Points
from sansa_probe.io.masks import decode_rle, encode_rle

TINY_ARGS = ["--backbone", "hiera_t", "--image-size", "256", "--sam2-checkpoint", "none", "--device", "cpu", "--no-progress"]
REPO = Path(__file__).resolve().parents[1]

REFERENCES_YAML = """
classes:
  - name: red blob
    references:
      - {image: refs/r0.jpg, mask: refs/r0.png}
      - {image: refs/r1.jpg, points: [[65, 45], [5, 5, 0]]}
  - name: box thing
    id: 7
    references:
      - {image: refs/r1.jpg, box: [30, 20, 100, 70]}
  - name: scribbled
    references:
      - {image: refs/r0.jpg, scribble: refs/stroke.png}
"""


@pytest.fixture
def scene(tmp_path, rng):
    """Two reference images with masks and a stroke, three classes, 6 targets (one in a subfolder)."""
    (tmp_path / "refs").mkdir()
    for c in range(2):
        image, mask = blob_image(rng, 90, 130)
        Image.fromarray(image).save(tmp_path / "refs" / f"r{c}.jpg")
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "refs" / f"r{c}.png")
    stroke = np.zeros((90, 130), np.uint8)
    stroke[40:50, 60:64] = 255
    Image.fromarray(stroke).save(tmp_path / "refs" / "stroke.png")
    (tmp_path / "refs.yaml").write_text(REFERENCES_YAML)
    targets = tmp_path / "targets"
    (targets / "sub").mkdir(parents=True)
    for i, (h, w) in enumerate([(70, 95), (101, 77), (64, 64)]):
        Image.fromarray(blob_image(rng, h, w)[0]).save(targets / f"t{i}.jpg")
    Image.fromarray(blob_image(rng, 66, 66)[0]).save(targets / "sub" / "t0.png")
    return tmp_path


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine two spinning OpenMP threads per process are
    several times slower. The subprocesses get ``OMP_NUM_THREADS=1`` as well (see ``_env``)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def shared_model(tiny_model, monkeypatch):
    """Reuse the session model instead of building one per command; count the builds."""
    builds = []
    monkeypatch.setattr(annotate, "model_from_args", lambda args: builds.append(args) or tiny_model)
    return builds


def run(scene: Path, out: str, *extra: str, references: str = "refs.yaml") -> int:
    return annotate.main(["--references", str(scene / references), "--out", str(scene / out), *extra, *TINY_ARGS])


def sorted_targets(folder: Path) -> list[Path]:
    return sorted(Path(os.path.abspath(p)) for p in folder.rglob("*") if p.suffix in (".jpg", ".png"))


def test_coco_output_decodes_to_the_predictors_masks(scene, tiny_model, capsys):
    code = run(scene, "out", "--targets", str(scene / "targets"), "--batch-size", "2", "--chunk-size", "2",
               "--num-workers", "2", "--save-masks", "--save-overlays")
    assert code == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()  # results on stdout, warnings on stderr
    assert lines[0].startswith("model: SANSA (adapters on) | hiera_t SAM2 2.1 @256px | SAM2 weights: RANDOM | adapters: fresh")
    assert lines[-1].startswith("annotated ") and printed.err.startswith("warning: SAM2 has RANDOM weights")
    out = scene / "out"
    coco = COCO(str(out / "annotations.json"))
    info = coco.dataset["info"]  # the model in words: random SAM2 weights and fresh adapters flagged
    assert info["identity"]["sam2_weights"] == "random" and info["identity"]["adapters"] == "fresh" and info["identity"]["backbone"] == "hiera_t"
    assert "SAM2 weights: RANDOM" in info["model"] and any("FRESH" in w for w in info["warnings"])
    classes = load_references(scene / "refs.yaml")
    targets = sorted_targets(scene / "targets")
    assert [c["id"] for c in coco.dataset["categories"]] == [1, 7, 3]
    assert sorted(coco.imgs) == list(range(1, len(targets) + 1))
    assert [coco.imgs[i + 1]["file_name"] for i in range(len(targets))] == [p.relative_to(scene / "targets").as_posix() for p in targets]
    assert coco.dataset["skipped"] == [] and json.loads((out / "skipped.json").read_text()) == []
    assert [a["id"] for a in coco.dataset["annotations"]] == list(range(1, len(coco.anns) + 1))

    compared = 0
    for cls in classes:
        predictor = SansaPredictor(tiny_model, batch_size=2)
        predictor.set_references(list(cls.images), list(cls.prompts))
        for image_id, (path, prediction) in enumerate(zip(targets, predictor.predict_batch(targets)), start=1):
            info = coco.imgs[image_id]
            assert (info["height"], info["width"]) == prediction.mask.shape
            found = coco.getAnnIds(imgIds=[image_id], catIds=[cls.category_id])
            if not prediction.mask.any():
                assert found == []
                continue
            (annotation,) = coco.loadAnns(found)
            np.testing.assert_array_equal(decode_rle(annotation["segmentation"]), prediction.mask)
            np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), prediction.mask)
            assert annotation["area"] == int(prediction.mask.sum()) and annotation["iscrowd"] == 0
            rows, cols = np.nonzero(prediction.mask)
            assert annotation["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
            assert annotation["score"] == pytest.approx(prediction.score, abs=1e-6)
            folder = f"{cls.category_id}_{cls.name.replace(' ', '_')}"
            np.testing.assert_array_equal(np.asarray(Image.open(out / "masks" / folder / f"{info['file_name']}.png")) > 0, prediction.mask)
            compared += 1
    assert compared >= len(targets)  # random weights still give non-empty masks for most (image, class)
    overlays = sorted(p.relative_to(out / "overlays").as_posix() for p in (out / "overlays").rglob("*.png"))
    assert overlays == ["sub/t0.png.png", "t0.jpg.png", "t1.jpg.png", "t2.jpg.png"]
    assert Image.open(out / "overlays" / "t1.jpg.png").size == (77, 101)
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["chunk-000000.json", "chunk-000001.json", "manifest.json"]


def test_min_score_and_min_area_filter_and_a_rerun_only_merges(scene, capsys):
    targets = ["--targets", str(scene / "targets"), "--num-workers", "0"]
    assert run(scene, "all", *targets) == 0
    everything = json.loads((scene / "all" / "annotations.json").read_text())["annotations"]
    scores, areas = sorted(a["score"] for a in everything), sorted(a["area"] for a in everything)
    assert len(everything) >= 4
    cut_score, cut_area = scores[len(scores) // 2], areas[len(areas) // 2]
    assert run(scene, "score", *targets, "--min-score", str(cut_score)) == 0
    kept = json.loads((scene / "score" / "annotations.json").read_text())["annotations"]
    strip = lambda a: {k: v for k, v in a.items() if k != "id"}  # noqa: E731
    assert [strip(a) for a in kept] == [strip(a) for a in everything if a["score"] >= cut_score]
    assert run(scene, "area", *targets, "--min-area", str(cut_area)) == 0
    kept = json.loads((scene / "area" / "annotations.json").read_text())["annotations"]
    assert [strip(a) for a in kept] == [strip(a) for a in everything if a["area"] >= cut_area]

    before = (scene / "all" / "annotations.json").read_bytes()
    capsys.readouterr()
    assert run(scene, "all", *targets) == 0  # everything is done: only the merge runs
    assert "nothing left to compute" in capsys.readouterr().out
    assert (scene / "all" / "annotations.json").read_bytes() == before
    code = run(scene, "all", *targets, "--min-score", "0.9")
    assert code == 2 and "changed: min_score" in capsys.readouterr().err
    assert run(scene, "all", *targets, "--min-score", "0.9", "--overwrite") == 0


def test_the_encoder_runs_once_per_target_whatever_the_number_of_classes(scene, tiny_model, monkeypatch):
    frames: list[int] = []
    segments: list[int] = []
    hook = tiny_model.sam.image_encoder.register_forward_hook(lambda module, args, output: frames.append(args[0].shape[0]))
    segment = tiny_model.segment
    monkeypatch.setattr(tiny_model, "segment", lambda feats, memory, **kw: segments.append(feats.batch_size) or segment(feats, memory, **kw))
    one_class = "only:\n  - {image: refs/r0.jpg, mask: refs/r0.png}\n"
    (scene / "one.yaml").write_text(one_class)
    n = len(sorted_targets(scene / "targets"))
    assert n == 4
    try:
        for references, num_classes in (("one.yaml", 1), ("refs.yaml", 3)):
            frames.clear()
            segments.clear()
            assert run(scene, f"out{num_classes}", "--targets", str(scene / "targets"), "--batch-size", "3", "--num-workers", "0",
                       references=references) == 0
            classes = load_references(scene / references)
            # one encoder call per class for its references (cached memory), then one per target batch
            assert frames[:num_classes] == [len(c.images) for c in classes]
            assert frames[num_classes:] == [3, 1]  # each target through the image encoder exactly once
            assert segments == [3] * num_classes + [1] * num_classes  # memory attention + decoder per class
    finally:
        hook.remove()


def test_unreadable_targets_are_skipped_listed_and_the_run_goes_on(scene):
    targets = scene / "targets"
    (targets / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = (targets / "t0.jpg").read_bytes()
    (targets / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (targets / "text.png").write_text("hello")
    for name in ("t1.jpg", "t2.jpg"):  # fewer good targets: this test is about the bad ones
        (targets / name).unlink()
    (targets / "readme.txt").write_text("not an image suffix: not a target")
    (scene / "notes.txt").write_text("listed explicitly")
    (scene / "list.txt").write_text(f"# targets\nnotes.txt\nmissing.png\n\n{targets / 't0.jpg'}\n")
    code = run(scene, "out", "--targets", str(targets), "--target-list", str(scene / "list.txt"), "--chunk-size", "3",
               "--batch-size", "2", "--num-workers", "1")
    assert code == 0
    data = json.loads((scene / "out" / "annotations.json").read_text())
    skipped = {s["file_name"]: s for s in data["skipped"]}
    assert sorted(skipped) == ["missing.png", "notes.txt", "targets/corrupt.jpg", "targets/text.png", "targets/truncated.jpg"]
    assert "does not exist" in skipped["missing.png"]["reason"] and "cannot be decoded" in skipped["targets/corrupt.jpg"]["reason"]
    assert json.loads((scene / "out" / "skipped.json").read_text()) == data["skipped"]
    names = sorted([*skipped, *(i["file_name"] for i in data["images"])])
    assert [i["file_name"] for i in data["images"]] == [n for n in names if n not in skipped] and len(names) == 7
    ids = {i["file_name"]: i["id"] for i in data["images"]} | {s["file_name"]: s["id"] for s in data["skipped"]}
    assert [ids[n] for n in names] == list(range(1, 8))  # ids from the sorted order, skipped ones included
    assert COCO(str(scene / "out" / "annotations.json")).getImgIds() == sorted(i["id"] for i in data["images"])


def _tiny_command(scene: Path, out: str, *extra: str, references: str = "refs.yaml") -> list[str]:
    return ["-m", "sansa_probe.annotate", "--references", str(scene / references), "--targets", str(scene / "targets"),
            "--out", str(scene / out), *TINY_ARGS, *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_file_as_an_unbroken_run(scene, rng):
    for i in range(8):  # 12 targets, 12 chunks of one: several remain when the first appears
        Image.fromarray(blob_image(rng, 48, 64)[0]).save(scene / "targets" / f"more{i}.jpg")
    (scene / "one.yaml").write_text("only:\n  - {image: refs/r0.jpg, mask: refs/r0.png}\n")
    args = ["--chunk-size", "1", "--batch-size", "1", "--num-workers", "0"]
    assert run(scene, "unbroken", "--targets", str(scene / "targets"), *args, references="one.yaml") == 0  # same seeded weights
    command = [sys.executable, *_tiny_command(scene, "resumed", *args, references="one.yaml")]

    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = scene / "resumed" / "parts"
    deadline = time.monotonic() + 120
    while not any(parts.glob("chunk-*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    survivors = {p.name: p.stat().st_mtime_ns for p in parts.glob("chunk-*.json")}
    assert 1 <= len(survivors) < 12 and not (scene / "resumed" / "annotations.json").exists()

    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in parts.glob("chunk-*.json") if p.name in survivors} == survivors  # kept, not redone
    assert len(list(parts.glob("chunk-*.json"))) == 12 and not list(parts.glob(".*.tmp"))
    assert (scene / "resumed" / "annotations.json").read_bytes() == (scene / "unbroken" / "annotations.json").read_bytes()


@pytest.mark.slow
def test_torchrun_with_two_processes_equals_one_process(scene):
    args = ["--chunk-size", "2", "--batch-size", "2"]
    assert run(scene, "single", "--targets", str(scene / "targets"), "--num-workers", "0", *args) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *_tiny_command(scene, "multi", "--num-workers", "1", *args)]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (scene / "multi" / "annotations.json").read_bytes() == (scene / "single" / "annotations.json").read_bytes()
    chunks = [json.loads(p.read_text()) for p in sorted((scene / "multi" / "parts").glob("chunk-*.json"))]
    assert [c["chunk"] for c in chunks] == [0, 1]


def test_shorthand_json_and_rle_give_the_same_classes_as_yaml(scene):
    mask = np.asarray(Image.open(scene / "refs" / "r0.png")) > 0
    shorthand = {
        "red blob": [{"image": "refs/r0.jpg", "mask": encode_rle(mask)}, {"image": "refs/r1.jpg", "points": "65,45;5,5,0"}],
        "box thing": {"id": 7, "references": [{"image": str(scene / "refs" / "r1.jpg"), "box": "30,20,100,70"}]},
        "scribbled": [{"image": "refs/r0.jpg", "scribble": "refs/stroke.png"}],
    }
    (scene / "refs.json").write_text(json.dumps(shorthand))
    yaml_classes, json_classes = load_references(scene / "refs.yaml"), load_references(scene / "refs.json")
    assert [(c.name, c.category_id) for c in yaml_classes] == [("red blob", 1), ("box thing", 7), ("scribbled", 3)]
    assert [c.digest() for c in json_classes] == [c.digest() for c in yaml_classes]
    assert isinstance(yaml_classes[0].prompts[0], Mask) and isinstance(yaml_classes[0].prompts[1], Points)
    assert isinstance(yaml_classes[1].prompts[0], Box) and yaml_classes[0].prompts[1].labels.tolist() == [1, 0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("dog:\n  - {image: refs/r0.jpg, box: [1, 2, 3]}\n", "class 'dog', reference 1, field 'box': expected 4 numbers"),
        ("dog:\n  - {image: refs/r0.jpg, box: [1, 2, 3, 4], mask: refs/r0.png}\n", "class 'dog', reference 1: expected exactly one prompt field"),
        ("dog:\n  - {mask: refs/r0.png}\n", "class 'dog', reference 1: field 'image' is missing"),
        ("dog:\n  - {image: refs/r0.jpg, points: [[500, 5]]}\n", "class 'dog', reference 1, field 'points': point 0 at (x=500, y=5) lies outside"),
        ("dog:\n  - {image: refs/r0.jpg, points: [[5, 5, 2]]}\n", "class 'dog', reference 1, field 'points': Points.labels"),
        ("dog:\n  - {image: refs/r0.jpg, mask: refs/r0.png, colour: red}\n", "class 'dog', reference 1: unknown field(s) 'colour'"),
        ("dog:\n  - {image: refs/r0.jpg, mask: refs/nope.png}\n", "class 'dog', reference 1, field 'mask': mask file"),
        ("dog:\n  - {image: refs/r0.jpg, mask: refs/stroke.png}\n  - {image: refs/missing.jpg, mask: refs/r0.png}\n",
         "class 'dog', reference 2, field 'image': image file"),
        ("dog: []\n", "class 'dog', field 'references': expected a non-empty list"),
        ("classes:\n  - {name: a, id: 2, references: [{image: refs/r0.jpg, mask: refs/r0.png}]}\n"
         "  - {name: b, id: 2, references: [{image: refs/r0.jpg, mask: refs/r0.png}]}\n", "class 'b', field 'id': category id 2 is used"),
        ("classes:\n  - {references: []}\n", "classes[0]: expected a mapping with 'name'"),
        ("dog: [\n", "not valid YAML"),
        ("", "an empty file"),
    ],
)
def test_a_malformed_references_file_names_the_class_and_field(scene, capsys, shared_model, text, message):
    (scene / "bad.yaml").write_text(text)
    code = run(scene, "out", "--targets", str(scene / "targets"), references="bad.yaml")
    err = capsys.readouterr().err
    assert code == 2 and message in err and "bad.yaml" in err and "Traceback" not in err
    assert shared_model == []  # refused before the model is built


@pytest.mark.parametrize(
    "targets, message",
    [
        (["--targets", "EMPTY"], "--targets: folder EMPTY holds no image (.jpg"),
        (["--target", "EMPTY"], "--targets: folder EMPTY holds no image (.jpg"),  # segment's spelling, the same rule
        (["--targets", "MISSING"], "--targets: MISSING does not exist"),
        (["--target-list", "MISSING"], "--target-list: file MISSING does not exist"),
        ([], "no target images found (no --targets or --target-list)"),
    ],
)
def test_no_targets_and_missing_paths_are_clear_errors(scene, capsys, targets, message):
    (scene / "empty").mkdir()
    (scene / "empty" / "notes.txt").write_text("no images here")
    paths = {"EMPTY": str(scene / "empty"), "MISSING": str(scene / "missing")}
    code = run(scene, "out", *[paths.get(t, t) for t in targets])
    err = capsys.readouterr().err
    assert code == 2 and message.replace("MISSING", paths["MISSING"]).replace("EMPTY", paths["EMPTY"]) in err and "Traceback" not in err
    assert run(scene, "out", "--targets", str(scene / "targets"), "--references", str(scene / "nope.yaml")) == 2
    assert "--references: file" in capsys.readouterr().err


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "sansa_probe.annotate", "--help"], capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 0 and "--min-score" in result.stdout and "references:" in result.stdout


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED_DATA / "sansa_demo").is_dir(), reason="../shared/data/sansa_demo is absent")
def test_annotate_the_real_demo_photographs(tmp_path, tiny_model):
    demo = SHARED_DATA / "sansa_demo"
    (tmp_path / "refs.yaml").write_text(
        f"dog:\n  - {{image: {demo}/images/image001.jpg, mask: {demo}/masks/image001_dog.png}}\n"
        f"frisbee:\n  - {{image: {demo}/images/image001.jpg, mask: {demo}/masks/image001_frisbee.png}}\n"
    )
    targets = [demo / "images" / f"image00{i}.jpg" for i in (2, 7, 5)]  # landscape, portrait, odd size
    (tmp_path / "list.txt").write_text("\n".join(map(str, targets)) + "\n")
    code = annotate.main(["--references", str(tmp_path / "refs.yaml"), "--target-list", str(tmp_path / "list.txt"),
                          "--out", str(tmp_path / "out"), "--batch-size", "2", "--num-workers", "2", *TINY_ARGS])
    assert code == 0
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    targets = sorted(targets)
    assert [coco.imgs[i]["file_name"] for i in (1, 2, 3)] == [p.name for p in targets]
    for cls in load_references(tmp_path / "refs.yaml"):
        predictor = SansaPredictor(tiny_model, batch_size=2)
        predictor.set_references(list(cls.images), list(cls.prompts))
        for image_id, (target, prediction) in enumerate(zip(targets, predictor.predict_batch(targets)), start=1):
            width, height = Image.open(target).size
            assert (coco.imgs[image_id]["height"], coco.imgs[image_id]["width"]) == (height, width)
            found = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[cls.category_id]))
            decoded = coco.annToMask(found[0]).astype(bool) if found else np.zeros((height, width), bool)
            np.testing.assert_array_equal(decoded, prediction.mask)


def _tree_hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_mask_files_never_collide_and_overwrite_removes_the_previous_ones(scene, rng, capsys):
    """Case 3: a.jpg, a.png and a__2.jpg get three mask files; a refused rerun changes nothing;
    --overwrite leaves none of the previous run's masks behind."""
    targets = scene / "collide"
    targets.mkdir()
    for name in ("a.jpg", "a.png", "a__2.jpg"):
        Image.fromarray(blob_image(rng, 60, 70)[0]).save(targets / name)
    (scene / "one.yaml").write_text("only:\n  - {image: refs/r0.jpg, mask: refs/r0.png}\n")
    args = ["--targets", str(targets), "--num-workers", "0", "--save-masks", "--save-overlays"]
    assert run(scene, "out", *args, references="one.yaml") == 0
    out = scene / "out"
    annotations = json.loads((out / "annotations.json").read_text())
    files = {i["id"]: i["file_name"] for i in annotations["images"]}
    masks = sorted(p.relative_to(out / "masks").as_posix() for p in (out / "masks").rglob("*.png"))
    assert masks == sorted(f"1_only/{files[a['image_id']]}.png" for a in annotations["annotations"])
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["a.jpg.png", "a.png.png", "a__2.jpg.png"]  # one each

    before = _tree_hashes(out)
    capsys.readouterr()
    assert run(scene, "out", *args, "--min-area", "1000000", references="one.yaml") == 2
    err = capsys.readouterr().err
    assert "its parts/ were written by a run with other settings (changed: min_area)" in err and "--overwrite" in err
    assert _tree_hashes(out) == before

    assert run(scene, "out", "--targets", str(targets), "--num-workers", "0", "--min-area", "1000000", "--overwrite",
               references="one.yaml") == 0
    assert json.loads((out / "annotations.json").read_text())["annotations"] == []
    assert not (out / "masks").exists() and not (out / "overlays").exists()


def test_a_class_given_twice_in_the_yaml_is_an_error_naming_it(scene, capsys, shared_model):
    """Case 10: YAML keeps the last of two equal keys; the references file refuses it by name and line."""
    (scene / "twice.yaml").write_text(
        "dog:\n  - {image: refs/r0.jpg, mask: refs/r0.png}\n"
        "cat:\n  - {image: refs/r1.jpg, mask: refs/r1.png}\n"
        "dog:\n  - {image: refs/r1.jpg, box: [1, 2, 30, 40]}\n"
    )
    (scene / "twice.json").write_text('{"dog": [{"image": "refs/r0.jpg", "mask": "refs/r0.png"}], "dog": []}')
    before = _tree_hashes(scene)
    for name, where in (("twice.yaml", "line 5: "), ("twice.json", "")):
        assert run(scene, "out", "--targets", str(scene / "targets"), references=name) == 2
        err = capsys.readouterr().err
        assert f"{scene / name}: {where}the key 'dog' is given twice" in err and "Traceback" not in err
    assert _tree_hashes(scene) == before and not shared_model  # refused before the model was built


def test_ctrl_c_keeps_finished_chunks_and_a_rerun_equals_the_unbroken_run(scene, capsys, monkeypatch):
    """SIGINT in the third chunk: one line, rc 130, two chunks kept; rerunning gives the unbroken file."""
    from sansa_probe.annotation import run as run_module

    args = ["--targets", str(scene / "targets"), "--chunk-size", "1", "--batch-size", "1", "--num-workers", "0"]
    assert run(scene, "unbroken", *args) == 0
    real = run_module.segment_batch
    calls = {"n": 0}

    def interrupting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, during the third target
        return real(*a, **k)

    monkeypatch.setattr(run_module, "segment_batch", interrupting)
    capsys.readouterr()
    assert run(scene, "broken", *args) == 130
    printed = capsys.readouterr()
    err = printed.err.strip().splitlines()
    parts = scene / "broken" / "parts"
    assert printed.out.startswith("model: ") and all(line.startswith("warning: ") for line in err[:-1])  # the model, then one line
    assert err[-1] == f"sansa_probe.annotate: interrupted; 2 of 4 chunks are saved in {parts}: rerun the same command to resume"
    kept = _tree_hashes(parts)
    monkeypatch.setattr(run_module, "segment_batch", real)
    assert run(scene, "broken", *args) == 0
    assert all(_tree_hashes(parts)[name] == digest for name, digest in kept.items() if name.startswith("chunk"))
    assert (scene / "broken" / "annotations.json").read_bytes() == (scene / "unbroken" / "annotations.json").read_bytes()
