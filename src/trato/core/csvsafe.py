"""CSV files that people open in spreadsheets: every cell written so it cannot run as a formula.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (OWASP "CSV Injection"); such a cell is prefixed
with a single quote, which spreadsheets show as text. Every export of customer-supplied text
goes through :func:`write_csv`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """``value`` as text a spreadsheet shows literally (``None`` is an empty cell)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(path: Path, header: Sequence[object], rows: Iterable[Sequence[object]]) -> int:
    """Write a header and rows, every cell through :func:`safe_cell`; returns the rows written.

    UTF-8 with a byte-order mark, so that spreadsheet programs read accented names right.
    """
    count = 0
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow([safe_cell(cell) for cell in header])
        for row in rows:
            writer.writerow([safe_cell(cell) for cell in row])
            count += 1
    return count
