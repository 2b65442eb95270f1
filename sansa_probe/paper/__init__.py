"""The paper's printed numbers, ours beside them, and the runs that regenerate each table and figure."""

from sansa_probe.paper.compare import KEYS, OURS_COLUMNS, format_side_by_side, side_by_side
from sansa_probe.paper.numbers import PAPER_COLUMNS, TABLE_IDS, TABLE_TITLES, paper_numbers

__all__ = ["KEYS", "OURS_COLUMNS", "PAPER_COLUMNS", "TABLE_IDS", "TABLE_TITLES", "format_side_by_side", "paper_numbers", "side_by_side"]
