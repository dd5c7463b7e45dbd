"""The one Markdown table renderer of multidiff: every report and benchmark table goes through it."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence, Union

__all__ = ["markdown_table"]

Format = Union[str, Callable[[Any], str], None]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], formats: Optional[Sequence[Format]] = None,
                   missing: str = "-") -> str:
    """A GitHub Markdown table: ``| a | b |``, ``|---|---|``, then one line per row.

    ``rows`` holds one sequence of cells per line, as many as ``header``. ``formats`` gives one
    entry per column: a %-format string (``"%.3f"``), a callable returning the cell's text, or
    None for ``str``. A cell that is None is written as ``missing``; a ``|`` inside a cell is
    escaped and a line break becomes a space, so a cell never breaks the table."""
    header = list(header)
    formats = list(formats) if formats is not None else [None] * len(header)
    if len(formats) != len(header):
        raise ValueError(f"formats has {len(formats)} entries for {len(header)} columns")

    def cell(value: Any, fmt: Format) -> str:
        if value is None:
            return missing
        if fmt is None:
            text = str(value)
        elif isinstance(fmt, str):
            text = fmt % value
        else:
            text = fmt(value)
        return text.replace("|", "\\|").replace("\n", " ")

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    out = [line([cell(h, None) for h in header]), "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells for {len(header)} columns")
        out.append(line([cell(v, f) for v, f in zip(row, formats)]))
    return "\n".join(out)
