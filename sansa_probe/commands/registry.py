"""The one list of commands: ``python -m sansa_probe`` prints it, pyproject's ``[project.scripts]``
mirror it, the grammar and README tests walk it and docs/DESIGN.md shows it (:func:`markdown_table`).

Plain data, no imports of the commands: listing them costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Command", "COMMANDS", "SHARED_GROUPS", "command_lines", "get_command", "markdown_table"]

SHARED_GROUPS = ("data", "model", "output", "run")  # the option groups of sansa_probe.commands.grammar, in help order


@dataclass(frozen=True)
class Command:
    """One ``python -m sansa_probe.<name>``.

    Attributes:
        name: the module under ``sansa_probe`` (``part_matching``).
        summary: what it does, in one line.
        script: its console script in ``[project.scripts]`` (``None``: none).
        groups: the shared option groups (:data:`SHARED_GROUPS`) its parser has; ``()`` for a
            command with a grammar of its own (the miniature's pipeline).
        both_models: whether it runs frozen SAM2 and SANSA on one model object by default
            (``--adapters both``: the probes).
        package: ``sansa_probe.<name>`` is a package whose ``__main__`` holds ``main``.
    """

    name: str
    summary: str
    script: str | None
    groups: tuple[str, ...] = SHARED_GROUPS
    both_models: bool = False
    package: bool = False

    @property
    def module(self) -> str:
        """What ``python -m`` runs."""
        return f"sansa_probe.{self.name}"

    @property
    def main_module(self) -> str:
        """The module holding ``main`` and ``build_parser``."""
        return f"{self.module}.__main__" if self.package else self.module

    @property
    def entry_point(self) -> str:
        """Its ``[project.scripts]`` value."""
        return f"{self.main_module}:main"


_IMAGES = ("model", "output", "run")  # commands that read images of their own, not a registered dataset

COMMANDS: tuple[Command, ...] = (
    Command("segment", "segment target images from k annotated references (masks, overlays, COCO results)", "sansa-segment", _IMAGES),
    Command("annotate", "label a folder of images from a few references per class (COCO json, resumable)", "sansa-annotate", _IMAGES),
    Command("train", "train SANSA's adapters on few-shot clips (paper section 3.3; resumable, torchrun)", "sansa-train"),
    Command("evaluate", "few-shot segmentation benchmarks as the paper reports them (mIoU, FB-IoU)", "sansa-evaluate"),
    Command("compare", "frozen SAM2 against SANSA on the same episodes, with a paired bootstrap interval", "sansa-compare"),
    Command("ablation", "each behaviour option of ours against the public release's, paired on the same episodes", "sansa-ablation"),
    Command("pca", "class information across principal components (paper fig. 8)", "sansa-pca", both_models=True),
    Command("projection", "2-D PCA / UMAP of object features coloured by class (paper figs. 4a, 8b-c)", "sansa-projection",
            both_models=True),
    Command("pca_rgb", "dense features as colours, 3 principal components -> RGB (paper figs. 2, 4b)", "sansa-pca-rgb", both_models=True),
    Command("linear_probe", "how linearly decodable the classes are (paper fig. 9 left)", "sansa-linear-probe", both_models=True),
    Command("part_matching", "part-level clusters matched across image pairs (paper fig. 4c)", "sansa-part-matching", both_models=True),
    Command("spatial_coherence", "how smooth feature matches are as continuity breaks (paper table 12)", "sansa-spatial-coherence",
            _IMAGES, both_models=True),
    Command("miniature", "regenerate the shipped miniature SAM2, its fold adapters and results table", None, (), package=True),
)


def get_command(name: str) -> Command:
    for command in COMMANDS:
        if command.name == name:
            return command
    raise ValueError(f"command {name!r}: expected one of {', '.join(c.name for c in COMMANDS)}")


def command_lines() -> list[str]:
    """One line per command: ``python -m sansa_probe.<name>`` and its summary, aligned."""
    width = max(len(c.module) for c in COMMANDS) + len("python -m ")
    return [f"{'python -m ' + c.module:<{width}}  {c.summary}" for c in COMMANDS]


def markdown_table() -> str:
    """The commands as a Markdown table (docs/DESIGN.md holds exactly this)."""
    rows = ["| command | what it does | script |", "| --- | --- | --- |"]
    rows += [f"| `python -m {c.module}` | {c.summary} | {f'`{c.script}`' if c.script else ''} |" for c in COMMANDS]
    return "\n".join(rows)
