"""A generic CSV table with one CIF text per row.

Options: ``cif_column`` (the CIF text), ``text_columns`` (one or more columns whose non-empty cells
become the texts, in that order, without duplicates), ``id_column`` (default: the 1-based row
number, as a string), ``group_column`` (optional leakage group). Every other column is kept in
``Entry.columns`` as a string (empty cells -> None); nothing is type-converted here.

A missing or empty CIF cell gives ``Rejected`` naming the row number (data rows count from 1;
the header is row 0). A column named in the options but absent from the header raises ValueError
listing the available columns.
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Iterator, Sequence

from crystalclip.errors import BadInput
from crystalclip.sources.base import Entry, Rejected

SOURCE = "csv"


def _raise_csv_limit() -> None:
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def read_header(path: str | Path) -> list[str]:
    _raise_csv_limit()
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])


def _as_list(columns: str | Sequence[str] | None) -> list[str]:
    if columns is None:
        return []
    if isinstance(columns, str):
        return [c.strip() for c in columns.split(",") if c.strip()]
    return list(columns)


def check_columns(path: str | Path, cif_column: str | None, text_columns, id_column=None,
                  group_column=None) -> list[str]:
    """Validate the options against the header; returns the header."""
    header = read_header(path)
    if not cif_column:
        raise BadInput(
            f"{path}: which column holds the CIF text? pass cif_column=...; "
            f"available columns: {header}"
        )
    wanted = [cif_column, *_as_list(text_columns)]
    wanted += [c for c in (id_column, group_column) if c]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise BadInput(f"{path}: no column(s) {missing}; available columns: {header}")
    return header


def iter_entries(
    path: str | Path | None = None,
    cif_column: str | None = None,
    text_columns: str | Sequence[str] | None = None,
    id_column: str | None = None,
    group_column: str | None = None,
    limit: int | None = None,
    texts_generated: bool = False,
    **_: object,
) -> Iterator[Entry | Rejected]:
    if path is None:
        raise BadInput("csv source needs a path")
    path = Path(path)
    check_columns(path, cif_column, text_columns, id_column, group_column)
    text_cols = _as_list(text_columns)
    special = {cif_column, id_column, group_column, *text_cols}
    _raise_csv_limit()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        seen_ids: set[str] = set()
        for n, row in enumerate(reader, start=1):
            if limit is not None and n > limit:
                return
            where = f"{path}:row {n}"
            eid = (row.get(id_column) or "").strip() if id_column else str(n)
            if not eid:
                yield Rejected(f"row{n}", SOURCE, f"row {n}: empty id in column {id_column!r}",
                               where)
                continue
            if eid in seen_ids:
                yield Rejected(eid, SOURCE, f"row {n}: duplicate id {eid!r}", where)
                continue
            seen_ids.add(eid)
            cif = row.get(cif_column)
            if cif is None or not cif.strip():
                what = "missing" if cif is None else "empty"
                yield Rejected(eid, SOURCE, f"row {n}: {what} CIF cell in column {cif_column!r}",
                               where)
                continue
            texts = []
            for col in text_cols:
                text = re.sub(r"\s+", " ", row.get(col) or "").strip()
                if text and text not in texts:
                    texts.append(text)
            columns = {
                k: (v.strip() or None) if isinstance(v, str) else None
                for k, v in row.items()
                if k not in special and k  # skip unnamed (trailing empty) columns
            }
            group = (row.get(group_column) or "").strip() or None if group_column else None
            yield Entry(id=eid, source=SOURCE, cif=cif, texts=texts, group=group, columns=columns,
                        path=where, texts_generated=texts_generated)


def count(path: str | Path | None = None, limit: int | None = None, **_: object) -> int | None:
    """Row count; reads the file once (CIF cells span lines, so lines cannot be counted)."""
    if path is None:
        return None
    _raise_csv_limit()
    with open(path, newline="", encoding="utf-8-sig") as f:
        n = sum(1 for _ in csv.reader(f)) - 1
    n = max(n, 0)
    return n if limit is None else min(n, limit)
