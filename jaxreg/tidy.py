"""Tidy tables: a list of records (one dict of Python scalars per row, the same keys in every row)
as CSV text or file (standard library only) or as a pandas DataFrame (when pandas is installed).

Used by :meth:`jaxreg.sweeps.SweepResult.to_records` (one row per grid point, and per fold) and
:meth:`jaxreg.cv.CVResult.to_records` (one row per grid point: mean and standard error).
"""
from __future__ import annotations

import csv
import io
import math
from typing import Sequence

from jaxreg.atomic import write_text

__all__ = ["columns_of", "csv_text", "write_csv", "dataframe"]


def columns_of(records: Sequence[dict]) -> list:
    """The column names, in first-seen order over the rows."""
    cols = {}
    for r in records:
        cols.update(dict.fromkeys(r))
    return list(cols)


def _cell(v):
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return v


def csv_text(records: Sequence[dict]) -> str:
    """The records as CSV (a header of :func:`columns_of`, one line per record; NaN as ``nan``,
    booleans as ``True``/``False``), readable by ``csv.DictReader`` and ``pandas.read_csv``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns_of(records), lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: _cell(v) for k, v in r.items()})
    return buf.getvalue()


def write_csv(records: Sequence[dict], path) -> str:
    """Write :func:`csv_text` to ``path`` atomically; returns the path."""
    write_text(path, csv_text(records))
    return str(path)


def dataframe(records: Sequence[dict]):
    """A ``pandas.DataFrame`` of the records (ImportError with the install hint without pandas)."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - exercised where pandas is absent
        raise ImportError("to_dataframe() needs pandas (pip install pandas); to_records() and "
                          "to_csv() need nothing beyond the standard library") from e
    return pd.DataFrame.from_records(list(records), columns=columns_of(records))
