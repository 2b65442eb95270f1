"""Notebook parameters: defaults in the ``parameters`` cell, overridden from the environment or by papermill.

Every notebook of ``notebooks/`` starts with a code cell tagged ``parameters`` (papermill's
convention) of plain ``NAME = value`` assignments, ending with::

    from sansa_probe.notebook_support.params import from_environment
    globals().update(from_environment(globals()))

Each UPPER_CASE name of that cell can then be set without editing the notebook:

* from the environment, as ``SANSA_NB_<NAME>`` (``SANSA_NB_EPISODES=4 jupyter lab``); the text
  is read as the default's type (:func:`parse_value`);
* by papermill (``papermill in.ipynb out.ipynb -p EPISODES 4``), whose injected cell runs after
  the ``parameters`` cell and so wins over the environment.

:func:`build_model` turns the model parameters into a model exactly as the commands'
``--dataset``/``--fold``/``--backbone``/``--sam2-checkpoint``/``--image-size``/``--checkpoint``
options do: ``DATASET = "synthetic"`` with no SAM2 given is the shipped miniature and its fold's
adapters (offline, no download).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from typing import Any, Mapping

import torch

from sansa_probe.commands.grammar import model_from_args

__all__ = ["PREFIX", "parse_value", "from_environment", "build_model"]

PREFIX = "SANSA_NB_"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _literal(text: str) -> Any:
    return ast.literal_eval(text.strip())


def parse_value(text: str, default: Any, *, name: str = "value") -> Any:
    """Read ``text`` (an environment variable's value) as the type of the parameter's ``default``.

    ``None``/``none`` gives ``None`` whatever the default; otherwise by the default's type:
    bool (``1/true/yes/on``, ``0/false/no/off``), int, float, str (the text as is), list, tuple
    or dict (a Python literal, e.g. ``[1, 2]`` or ``{"image_size": 96}``). A parameter whose
    default is ``None`` takes a Python literal when the text is one (``3``, ``[1, 2]``,
    ``"a b"``) and the plain text otherwise (a path). ``name`` names the variable in errors.

    Raises:
        ValueError: the text cannot be read as the default's type.
    """
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected a string, got {type(text).__name__}")
    stripped = text.strip()
    if stripped in ("None", "none"):
        return None
    what = {bool: "a boolean (1/true/yes/on or 0/false/no/off)", int: "an integer", float: "a number"}
    if isinstance(default, bool):
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueError(f"{name}={text!r}: expected {what[bool]} (the default is {default!r})")
    if isinstance(default, (int, float)):
        kind = int if isinstance(default, int) else float
        try:
            return kind(stripped)
        except ValueError:
            raise ValueError(f"{name}={text!r}: expected {what[kind]} (the default is {default!r})") from None
    if isinstance(default, str):
        return text
    if default is None:
        try:
            return _literal(stripped)
        except (ValueError, SyntaxError):
            return text
    if isinstance(default, (list, tuple, dict)):
        try:
            value = _literal(stripped)
        except (ValueError, SyntaxError):
            value = None
        sequence = isinstance(default, (list, tuple)) and isinstance(value, (list, tuple))
        if not (sequence or (isinstance(default, dict) and isinstance(value, dict))):
            example = '{"key": 1}' if isinstance(default, dict) else "[1, 2]"
            raise ValueError(f"{name}={text!r}: expected a Python {type(default).__name__} literal such as {example} "
                             f"(the default is {default!r})")  # fmt: skip
        return type(default)(value) if sequence else value
    raise ValueError(f"{name}: a parameter whose default is a {type(default).__name__} cannot be set from the environment")


def from_environment(namespace: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, prefix: str = PREFIX,
                     announce: bool = True) -> dict[str, Any]:
    """The parameters of ``namespace`` (its UPPER_CASE names) that ``environ`` (default
    ``os.environ``) sets as ``<prefix><NAME>``, read with :func:`parse_value`.

    Returns only the overridden names (``globals().update(...)`` applies them). Variables with the
    prefix that name no parameter of this notebook are ignored (one environment may serve several
    notebooks). ``announce``: print the overrides on stdout.
    """
    environ = os.environ if environ is None else environ
    overrides = {}
    for name, default in namespace.items():
        if not (name.isupper() and name[0].isalpha()) or callable(default) or isinstance(default, type(sys)):
            continue
        key = prefix + name
        if key in environ:
            overrides[name] = parse_value(environ[key], default, name=key)
    if announce and overrides:
        print("parameters from the environment: " + ", ".join(f"{k}={v!r}" for k, v in overrides.items()))
    return overrides


def build_model(*, dataset: str | None = "synthetic", fold: int = 0, backbone: str | None = None, sam2_checkpoint: str | None = "auto",
                image_size: int | None = None, checkpoint: str | None = None, setting: str = "strict", device: str | None = None,
                adapters: bool = True, model: str | None = None):
    """The model the commands build from the same options (:func:`sansa_probe.commands.grammar.model_from_args`).

    ``dataset="synthetic"`` with ``backbone``, ``image_size`` and ``checkpoint`` ``None`` and
    ``sam2_checkpoint="auto"`` is the shipped miniature with the SANSA adapters of ``fold``
    (announced on stdout), and so is ``model="miniature"`` for any data (images of your own
    included: ``dataset=None``); otherwise :func:`~sansa_probe.load_sansa` builds what they say
    (``sam2_checkpoint``: ``"auto"`` downloads Meta's weights, ``None``/``"none"`` random weights,
    or a path; ``checkpoint``: SANSA's adapters, ``None`` fresh adapters = frozen SAM2).
    ``dataset`` is the data the model will see (``None``: frames or images of your own, no
    miniature default); ``device`` ``None`` is CUDA when available, else the CPU; ``adapters``: the
    model's adapter switch (SANSA on, frozen SAM2 off).
    """

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    for label, value in (("sam2_checkpoint", sam2_checkpoint), ("checkpoint", checkpoint)):
        if value not in (None, "auto", "none") and not os.path.isfile(os.path.expanduser(str(value))):
            raise FileNotFoundError(f"{label}: file {value} does not exist (expected a checkpoint .pt file"
                                    + (", 'auto' or None)" if label == "sam2_checkpoint" else " or None)"))  # fmt: skip
    args = argparse.Namespace(
        dataset=dataset, fold=fold, backbone=backbone, sam2_version=None,
        sam2_checkpoint=None if sam2_checkpoint == "none" else sam2_checkpoint, image_size=image_size, setting=setting,
        sam2_overrides=None, checkpoint=None if checkpoint == "none" else checkpoint, device=device,
        adapters="on" if adapters else "off", model=model,
    )  # fmt: skip
    return model_from_args(args)
