"""Shared pieces of the hostile catalogue (issue 22): a tiny model on disk, tiny scenes, snapshots
of folders, and commands run in a child process whose memory and time are bounded and measured.

Everything here goes through entry points that are the project's public surface: the command
modules' ``main(argv)`` / ``python -m sansa_probe.<command>``, ``sansa_probe.load_sansa`` and
``sansa_probe.load_miniature``, ``sansa_probe.data.get_dataset``, and files crafted in ``tmp_path``.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class MiniFiles:
    """The shipped miniature written out as a user would hold it: Meta's layout for SAM2
    (``{"model": state dict}``) and our adapter format (config with the architecture inside)."""

    sam2: Path
    adapters: Path
    folder: Path

    def args(self) -> list[str]:
        """Model options that build the miniature (128 px, 2.2 M parameters) from these files."""
        return ["--sam2-checkpoint", str(self.sam2), "--checkpoint", str(self.adapters), "--device", "cpu", "--no-progress"]


def write_mini_files(folder: Path) -> MiniFiles:
    from sansa_probe import load_miniature

    model = load_miniature(fold=0)
    adapters = set(model.adapter_state_dict())
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {k: v for k, v in model.sam.state_dict().items() if k not in adapters}}, folder / "sam2.pt")
    model.save_adapters(folder / "adapters.pt")
    return MiniFiles(sam2=folder / "sam2.pt", adapters=folder / "adapters.pt", folder=folder)


def blob(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured image with one bright ellipse; returns (HxWx3 uint8, HxW bool mask)."""
    image = (rng.random((height, width, 3)) * 80).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    mask = ((yy - height / 2) / (height / 4)) ** 2 + ((xx - width / 2) / (width / 4)) ** 2 <= 1
    image[mask] = (200, 60, 40)
    return image, mask


def write_scene(folder: Path, *, targets: int = 2, seed: int = 0) -> Path:
    """``ref.png``, ``ref_mask.png`` and ``targets/t<i>.png`` (tiny) under ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    image, mask = blob(rng, 48, 64)
    Image.fromarray(image).save(folder / "ref.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "ref_mask.png")
    (folder / "targets").mkdir(exist_ok=True)
    for i in range(targets):
        Image.fromarray(blob(rng, 40 + 8 * i, 56)[0]).save(folder / "targets" / f"t{i}.png")
    return folder


def write_references_file(scene: Path) -> Path:
    """An annotate references file for the scene's one reference."""
    path = scene / "refs.json"
    path.write_text(json.dumps({"classes": [{"name": "blob", "references": [{"image": "ref.png", "mask": "ref_mask.png"}]}]}))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative posix path -> content)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_main(module: str, argv: list[str], capsys) -> tuple[int, str]:
    """``sansa_probe.<module>.main(argv)`` in this process -> (exit code, stderr)."""
    capsys.readouterr()
    code = importlib.import_module(f"sansa_probe.{module}").main([str(a) for a in argv])
    return code, capsys.readouterr().err


def error_line(err: str) -> str:
    """The one ``<prog>: error: ...`` line of a refused command (asserting there is exactly one)."""
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------- hostile files
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, *, rows: int = 8) -> bytes:
    """A small PNG (RGB, 8 bit) whose header claims ``width x height``: a few hundred bytes of
    zero rows, the rest missing (what a decoder would allocate in full before noticing)."""
    row = b"\0" * (1 + 3 * width)
    compressor = zlib.compressobj(9)
    data = compressor.compress(row * rows) + compressor.flush(zlib.Z_SYNC_FLUSH)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------- bounded children
_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    limit = int(sys.argv[1]) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a safety net for the machine, not the assertion
    report, code_text = sys.argv[2], sys.argv[3]
    started, outcome, namespace = time.perf_counter(), None, {"__name__": "__child__"}
    try:
        exec(compile(code_text, "<child>", "exec"), namespace)
    except BaseException as exc:  # what escaped, as a name: the parent asserts on it
        outcome = f"{type(exc).__name__}: {str(exc)[:300]}"
    # peak RSS of this process image: VmHWM (ru_maxrss would carry the forking parent's size across exec)
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    peak_kb = int(status["VmHWM"].split()[0]) if "VmHWM" in status else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(report, "w") as handle:
        json.dump({"outcome": outcome, "rss_mb": peak_kb / 1024, "seconds": time.perf_counter() - started,
                   "code": namespace.get("CODE")}, handle)
    """
)


@dataclass(frozen=True)
class ChildRun:
    outcome: str | None  # the exception that escaped the child's code, or None
    code: int | None  # the exit code the child's code stored in CODE (commands)
    rss_mb: float  # peak resident memory of the child, MiB
    stderr: str


def run_child(code: str, tmp_path: Path, *, address_space_mb: int = 12_000, timeout: float = 300) -> ChildRun:
    """Run ``code`` in a fresh Python whose address space is capped (protecting the machine from a
    20 GB decode) and report the exception that escaped it, its peak RSS and its stderr."""
    report = tmp_path / f"child-{os.getpid()}-{len(list(tmp_path.glob('child-*')))}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(address_space_mb), str(report), textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
    data = json.loads(report.read_text()) if report.is_file() else {"outcome": f"no report (exit {done.returncode})", "rss_mb": float("nan"), "code": None}
    return ChildRun(outcome=data["outcome"], code=data.get("code"), rss_mb=data["rss_mb"], stderr=done.stderr)


def child_command(module: str, argv: list[str]) -> str:
    """Child code running ``sansa_probe.<module>.main(argv)``, its exit code in ``CODE``."""
    return f"import sansa_probe.{module} as m\nCODE = m.main({[str(a) for a in argv]!r})\n"


