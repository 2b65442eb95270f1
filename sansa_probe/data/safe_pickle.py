"""The one way a pickle from a data root is read: an allow-list unpickler.

The literature ships some annotations as pickles (Matcher's LVIS-92i and PACO-Part files,
HSNet's COCO-20i image lists). A pickle can run any code while it is loaded, so every
pickle under ``--data-root`` goes through :func:`load_data_pickle`, which only rebuilds
plain containers (``dict``, ``list``, ``tuple``, ``set``, ``OrderedDict``, ``defaultdict``),
``str``, ``bytes``, ``int``, ``float``, ``bool`` and numpy arrays / scalars (PACO-Part stores
some segmentations as arrays). Any other global, e.g. ``os.system``, is refused before it
is looked up, so nothing from the file is executed, and the error names the file and the
global.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from sansa_probe.data.registry import DatasetNotFoundError

__all__ = ["ALLOWED_GLOBALS", "UnsafePickleError", "load_data_pickle"]

_BUILTINS = ("set", "frozenset", "bytearray", "bytes", "list", "dict", "tuple", "int", "float", "str", "bool", "complex")

# (module, name) pairs a data pickle may name; numpy's pickles use the first group
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [(module, name) for module in ("builtins", "__builtin__") for name in _BUILTINS]
    + [(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")]
    + [(module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")]
    + [("collections", "OrderedDict"), ("collections", "defaultdict")]
)


class UnsafePickleError(ValueError):
    """A data pickle names a global outside :data:`ALLOWED_GLOBALS` (it was not executed)."""


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(f"global {module}.{name}")


def load_data_pickle(path: str | os.PathLike, *, what: str) -> Any:
    """The object stored in the pickle ``path`` (only containers, text, numbers, numpy arrays).

    ``what`` says what the file should be (quoted in errors, e.g. ``"Matcher's LVIS pickle"``).
    A missing file raises :class:`DatasetNotFoundError`; a file naming another global raises
    :class:`UnsafePickleError` without running it; a truncated or non-pickle file ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} {path} does not exist")
    try:
        with open(path, "rb") as handle:
            return _AllowListUnpickler(handle).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(
            f"{path} was not loaded: it names {exc}, which a data file has no reason to contain "
            f"(only containers, text, numbers and numpy arrays are read from pickles; expected {what}). "
            "Nothing from the file was executed; replace it with the published file."
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError) as exc:
        raise ValueError(f"{path} cannot be unpickled ({type(exc).__name__}: {exc}); expected {what}") from None
