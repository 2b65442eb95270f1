"""The one way a pickle from a data root is read: an allow-list unpickler.

The literature ships some annotations as pickles (Matcher's LVIS-92i and PACO-Part files,
HSNet's COCO-20i image lists). A pickle can run any code while it is loaded, so every
pickle under ``--data-root`` goes through :func:`load_data_pickle`, which only rebuilds
plain containers (``dict``, ``list``, ``tuple``, ``set``, ``OrderedDict``, ``defaultdict``),
``str``, ``bytes``, ``int``, ``float``, ``bool`` and numpy arrays / scalars (PACO-Part stores
some segmentations as arrays). Any other global, e.g. ``os.system``, is refused before it
is looked up, so nothing from the file is executed, and the error names the file and the
global.

Sizes are bounded too, so a tiny file cannot ask for unbounded work: a call the pickle makes
(``bytes(n)``, ``bytearray(n)``, a numpy array or scalar of a given shape or dtype) may not allocate
more than 4 x the file's size plus 1 MiB, ``str()`` only converts text and numbers, ``_codecs.encode``
only takes the codecs pickles use; and once loaded, the object counted as a tree (a container the
file references twice counts twice: the "billion laughs" of shared references) may not exceed
4 x the file's size plus 100,000 items. Either is a :class:`DataPickleTooLarge` naming the file.
"""

from __future__ import annotations

import collections
import math
import numbers
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from sansa_probe.data.registry import DatasetNotFoundError

__all__ = ["ALLOWED_GLOBALS", "DataPickleTooLarge", "UnsafePickleError", "expanded_items", "load_data_pickle"]

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


ALLOWANCE_BYTES = 1 << 20  # a pickle may allocate 4 x its own size plus this
ALLOWANCE_ITEMS = 100_000  # and expand to 4 x its size in items plus this


class DataPickleTooLarge(ValueError):
    """A data pickle asks for more memory or items than its own size accounts for (nothing was allocated)."""


class _Budget:
    """What a pickle of ``file_size`` bytes may ask for."""

    def __init__(self, file_size: int) -> None:
        self.bytes = 4 * file_size + ALLOWANCE_BYTES
        self.items = 4 * file_size + ALLOWANCE_ITEMS

    def allocation(self, nbytes: int, what: str) -> None:
        if nbytes > self.bytes:
            raise DataPickleTooLarge(f"{what}, {nbytes} bytes, more than a file of its size can hold ({self.bytes})")


def _array_bytes(shape: Any, dtype: Any) -> int:
    dims = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if any(not isinstance(d, numbers.Integral) or d < 0 for d in dims):
        raise DataPickleTooLarge(f"an array shape {shape!r} that is not non-negative integers")
    return math.prod(int(d) for d in dims) * max(int(np.dtype(dtype).itemsize), 1)


class _BoundedArrayClass:
    """``numpy.ndarray`` as a pickle names it: called, its shape is checked first; handed to
    ``_reconstruct``, the real class is used."""

    def __init__(self, wrapped: type, budget: _Budget) -> None:
        self.wrapped, self.budget = wrapped, budget

    def __call__(self, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> Any:
        self.budget.allocation(_array_bytes(shape, dtype), f"an array of shape {shape!r}")
        return self.wrapped(shape, dtype, *args, **kwargs)


def _bounded(module: str, name: str, real: Any, budget: _Budget) -> Any:
    """``real`` (an allowed global), or a wrapper checking what a call asks for before it runs."""
    if module in ("builtins", "__builtin__") and name in ("bytes", "bytearray"):
        def sized(*args: Any) -> Any:
            if args and isinstance(args[0], numbers.Integral):
                budget.allocation(int(args[0]), f"{name}({args[0]})")
            return real(*args)
        return sized
    if module in ("builtins", "__builtin__") and name == "str":
        def text(*args: Any) -> Any:  # str() of a container would render its shared references in full
            if args and not isinstance(args[0], (str, bytes, bytearray, numbers.Number)):
                raise DataPickleTooLarge(f"str() of a {type(args[0]).__name__}")
            return real(*args)
        return text
    if (module, name) == ("_codecs", "encode"):
        def encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> Any:
            if str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
                raise DataPickleTooLarge(f"_codecs.encode with the codec {encoding!r} (pickles use latin1)")
            return real(obj, encoding, errors)
        return encode
    if name == "_reconstruct":
        def reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
            budget.allocation(_array_bytes(shape, dtype), f"an array of shape {shape!r}")
            return real(getattr(subtype, "wrapped", subtype), shape, dtype)
        return reconstruct
    if name == "scalar":
        def scalar(dtype: Any, *args: Any) -> Any:
            budget.allocation(int(np.dtype(dtype).itemsize), f"a numpy scalar of {dtype}")
            return real(dtype, *args)
        return scalar
    if (module, name) == ("numpy", "ndarray"):
        return _BoundedArrayClass(real, budget)
    return real


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, handle: Any, budget: _Budget) -> None:
        super().__init__(handle)
        self.budget = budget

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return _bounded(module, name, super().find_class(module, name), self.budget)
        raise UnsafePickleError(f"global {module}.{name}")


_DICTS = {dict, collections.OrderedDict, collections.defaultdict}
_SEQUENCES = {list, tuple, set, frozenset}
_CONTAINERS = _DICTS | _SEQUENCES | {np.ndarray}


def _children(node: Any) -> Any:
    kind = type(node)
    if kind in _DICTS:
        return [*node.keys(), *node.values()]
    if kind in _SEQUENCES:
        return node
    if kind is np.ndarray and node.dtype == object:
        return node.ravel().tolist()
    return ()


def expanded_items(obj: Any, limit: int) -> int:
    """Items of ``obj`` counted as a tree (a container referenced twice counts twice), computed
    once per container; :class:`DataPickleTooLarge` past ``limit`` or on a reference cycle."""
    if type(obj) not in _CONTAINERS:
        return 1
    sizes: dict[int, int] = {}  # every object reachable from obj stays alive meanwhile: ids are unique
    active: set[int] = set()
    stack: list[tuple[Any, int, list | None]] = [(obj, 0, None)]
    while stack:
        node, length, kids = stack.pop()
        key = id(node)
        if kids is not None:  # its children are done
            active.discard(key)
            total = 1 + length - len(kids) + sum(sizes[id(kid)] for kid in kids)
            if total > limit:
                raise DataPickleTooLarge(f"its shared references expand to more than {limit} items")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in active:
            raise DataPickleTooLarge("it holds a reference cycle")
        children = _children(node)
        kids = [c for c in children if type(c) in _CONTAINERS]
        if not kids:
            sizes[key] = 1 + len(children)
            continue
        active.add(key)
        stack.append((node, len(children), kids))
        stack.extend((kid, 0, None) for kid in kids if id(kid) not in sizes)
    return sizes[id(obj)]


def load_data_pickle(path: str | os.PathLike, *, what: str) -> Any:
    """The object stored in the pickle ``path`` (only containers, text, numbers, numpy arrays).

    ``what`` says what the file should be (quoted in errors, e.g. ``"Matcher's LVIS pickle"``).
    A missing file raises :class:`DatasetNotFoundError`; a file naming another global raises
    :class:`UnsafePickleError` without running it; a truncated or non-pickle file ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} {path} does not exist")
    budget = _Budget(path.stat().st_size)
    try:
        with open(path, "rb") as handle:
            value = _AllowListUnpickler(handle, budget).load()
        expanded_items(value, budget.items)
        return value
    except DataPickleTooLarge as exc:
        raise DataPickleTooLarge(
            f"{path} was not loaded: {exc}; expected {what}. Nothing was allocated beyond the limit; replace it with the published file."
        ) from None
    except UnsafePickleError as exc:
        raise UnsafePickleError(
            f"{path} was not loaded: it names {exc}, which a data file has no reason to contain "
            f"(only containers, text, numbers and numpy arrays are read from pickles; expected {what}). "
            "Nothing from the file was executed; replace it with the published file."
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError) as exc:
        raise ValueError(f"{path} cannot be unpickled ({type(exc).__name__}: {exc}); expected {what}") from None
