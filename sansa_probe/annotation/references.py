"""The references file of ``python -m sansa_probe.annotate``: classes, their k annotated references, negatives."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sansa_probe.io.images import load_rgb
from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble
from sansa_probe.prompts.text import parse_box, parse_points
from sansa_probe.io.masks import decode_rle, load_binary_png


_PROMPT_FIELDS = ("mask", "points", "box", "scribble")
_REFERENCE_FIELDS = ("image", *_PROMPT_FIELDS)
_CLASS_FIELDS = ("name", "id", "references", "negatives")



@dataclass(frozen=True, eq=False)
class ClassReferences:
    """One class to annotate.

    ``images[j]`` (``HxWx3`` uint8) is annotated by ``prompts[j]`` (pixel coordinates of that
    image); ``negatives`` are images written to memory with an empty mask.
    """

    name: str
    category_id: int
    images: tuple[np.ndarray, ...]
    prompts: tuple[Prompt, ...]
    negatives: tuple[np.ndarray, ...] = ()

    def digest(self) -> str:
        """sha256 of the class's name, id, pixels and prompts (what its memory depends on)."""
        h = hashlib.sha256(f"{self.name}\0{self.category_id}\0".encode())
        for image, prompt in zip(self.images, self.prompts):
            h.update(str(image.shape).encode() + image.tobytes())
            h.update(type(prompt).__name__.encode())
            for value in vars(prompt).values():
                h.update(np.ascontiguousarray(np.asarray(value, dtype=np.float64)).tobytes())
        for image in self.negatives:
            h.update(b"negative" + str(image.shape).encode() + image.tobytes())
        return h.hexdigest()


class _DuplicateKey(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise _DuplicateKey(
                        f"line {key_node.start_mark.line + 1}: the key {key!r} is given twice (first on line {seen[key]}); "
                        "expected each class (and each field) once"
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(f"the key {key!r} is given twice in one object; expected each class (and each field) once")
        seen.add(key)
    return dict(pairs)


def _read_structured(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"--references: file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            try:
                return json.loads(text, object_pairs_hook=_json_pairs)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON ({exc})") from None
        try:
            return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from None
    except _DuplicateKey as exc:
        raise ValueError(f"{path}: {exc}") from None


def _resolve(value: Any, base: Path, *, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a file path (string), got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _binary_mask(value: Any, base: Path, *, where: str) -> np.ndarray:
    if isinstance(value, dict):
        if set(value) != {"size", "counts"}:
            raise ValueError(f"{where}: expected a PNG path or COCO RLE {{size: [H, W], counts: ...}}, got keys {sorted(value)}")
        try:
            return decode_rle(value)
        except Exception as exc:  # pycocotools raises bare Exceptions on malformed RLE
            raise ValueError(f"{where}: malformed COCO RLE ({exc})") from None
    return load_binary_png(_resolve(value, base, where=where), name=where)


def _points(value: Any, *, where: str) -> Points:
    if isinstance(value, str):
        return parse_points(value, name=where)
    rows = value
    if isinstance(rows, (list, tuple)) and len(rows) in (2, 3) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rows):
        rows = [rows]  # a single point [x, y] or [x, y, label]
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(f"{where}: expected a non-empty list of [x, y] or [x, y, label], got {value!r}")
    coords, labels = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) not in (2, 3) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row
        ):
            raise ValueError(f"{where}: point {i} {row!r}: expected [x, y] or [x, y, label] numbers")
        coords.append((float(row[0]), float(row[1])))
        labels.append(int(row[2]) if len(row) == 3 else 1)
    try:
        return Points(np.array(coords), np.array(labels))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _box(value: Any, *, where: str) -> Box:
    if isinstance(value, str):
        return parse_box(value, name=where)
    if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"{where}: expected 4 numbers [x0, y0, x1, y1], got {value!r}")
    return Box(tuple(float(v) for v in value))


def _reference(entry: Any, base: Path, *, where: str) -> tuple[np.ndarray, Prompt]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with 'image' and one of {', '.join(_PROMPT_FIELDS)}, got {entry!r}")
    unknown = sorted(set(entry) - set(_REFERENCE_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; expected 'image' and one of {', '.join(_PROMPT_FIELDS)}")
    if "image" not in entry:
        raise ValueError(f"{where}: field 'image' is missing (the path of the reference image)")
    image_where = f"{where}, field 'image'"
    image = load_rgb(_resolve(entry["image"], base, where=image_where), name=image_where)
    given = [f for f in _PROMPT_FIELDS if f in entry]
    if len(given) != 1:
        raise ValueError(f"{where}: expected exactly one prompt field of {', '.join(_PROMPT_FIELDS)}, got {given or 'none'}")
    field = given[0]
    value, field_where = entry[field], f"{where}, field {field!r}"
    if field == "mask":
        prompt: Prompt = Mask(_binary_mask(value, base, where=field_where))
    elif field == "scribble":
        prompt = Scribble(_binary_mask(value, base, where=field_where))
    elif field == "points":
        prompt = _points(value, where=field_where)
    else:
        prompt = _box(value, where=field_where)
    prompt.validate(*image.shape[:2], name=field_where)
    return image, prompt


def _class_entries(data: Any, path: Path) -> list[tuple[str, dict]]:
    """The file's classes as ``(name, fields)`` in file order, either layout."""
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a mapping 'classes: [...]' or 'class name: [references]', got {type(data).__name__ if data is not None else 'an empty file'}")
    if set(data) == {"classes"} and isinstance(data["classes"], list):
        entries = []
        for i, item in enumerate(data["classes"]):
            if not isinstance(item, dict) or "name" not in item:
                raise ValueError(f"{path}: classes[{i}]: expected a mapping with 'name' and 'references', got {item!r}")
            if not isinstance(item["name"], str) or not item["name"].strip():
                raise ValueError(f"{path}: classes[{i}], field 'name': expected a non-empty string, got {item['name']!r}")
            entries.append((item["name"], item))
        if not entries:
            raise ValueError(f"{path}: 'classes' is empty; at least one class is needed")
        return entries
    entries = []
    for name, value in data.items():
        if isinstance(value, list):
            value = {"references": value}
        if not isinstance(value, dict):
            raise ValueError(f"{path}: class {name!r}: expected a list of references or a mapping with 'references', got {value!r}")
        entries.append((str(name), {"name": str(name), **value}))
    return entries


def load_references(path: str | os.PathLike) -> list[ClassReferences]:
    """Read and validate a references file (schema in the module docstring); images are loaded.

    Errors name the file, the class, the reference (1-based) and the field.
    """
    path = Path(path)
    base = path.resolve().parent
    classes: list[ClassReferences] = []
    names: set[str] = set()
    ids: set[int] = set()
    for position, (name, item) in enumerate(_class_entries(_read_structured(path), path)):
        where = f"{path}: class {name!r}"
        unknown = sorted(set(item) - set(_CLASS_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(_CLASS_FIELDS)}")
        if name in names:
            raise ValueError(f"{where}: the class name appears twice")
        category_id = item.get("id", position + 1)
        if not isinstance(category_id, int) or isinstance(category_id, bool) or category_id < 1:
            raise ValueError(f"{where}, field 'id': expected a positive integer category id, got {category_id!r}")
        if category_id in ids:
            raise ValueError(f"{where}, field 'id': category id {category_id} is used by another class")
        references = item.get("references")
        if not isinstance(references, list) or not references:
            raise ValueError(f"{where}, field 'references': expected a non-empty list of references, got {references!r}")
        pairs = [_reference(entry, base, where=f"{where}, reference {j + 1}") for j, entry in enumerate(references)]
        negatives = item.get("negatives") or []
        if not isinstance(negatives, list):
            raise ValueError(f"{where}, field 'negatives': expected a list of image paths, got {negatives!r}")
        negative_images = tuple(
            load_rgb(_resolve(p, base, where=f"{where}, field 'negatives'[{j}]"), name=f"{where}, field 'negatives'[{j}]")
            for j, p in enumerate(negatives)
        )
        names.add(name)
        ids.add(category_id)
        classes.append(ClassReferences(name, category_id, tuple(i for i, _ in pairs), tuple(p for _, p in pairs), negative_images))
    return classes
