"""``python -m sansa_probe``: the commands, one line each (from :mod:`sansa_probe.commands.registry`)."""

from __future__ import annotations

import sys

from sansa_probe import __version__
from sansa_probe.commands.registry import command_lines

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in ("-h", "--help"):
        print(f"python -m sansa_probe: takes no arguments (got {' '.join(argv)}); run a command, e.g. "
              "python -m sansa_probe.compare --help", file=sys.stderr)  # fmt: skip
        return 2
    print(f"sansa-probe {__version__}: reproduce, train and take apart SANSA on sam2. Commands (each has --help):")
    for line in command_lines():
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
