"""The one Markdown table writer of the studies and benchmarks."""
from __future__ import annotations


def markdown_table(header, rows) -> list:
    """The lines of a Markdown table: ``header`` (column titles) and ``rows`` (cells, formatted by
    the caller); a ``|`` inside a cell is escaped."""
    cell = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return (["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(map(cell, r)) + " |" for r in rows])
