"""MP-40 with generated captions (CLaC / Chemeleon style): CSV files with one Materials Project
structure per row (columns material_id, cif, prompt, and property columns).

``prompt`` is either one caption or a Python-literal list of captions (``"['...', '...']"``, parsed
with ``ast.literal_eval``, never ``eval``). Captions were written by an LLM from the properties, so
``texts_generated=True``.

Several CSV files of the same source share material ids (the two revisions of Chemeleon's test set
share 24): ``iter_entries([a, b])`` merges rows with the same material id into one Entry, uniting the
captions (first-seen order, no duplicates). The first file's CIF and property values win; columns the
first file lacks (``metallic``, ``stability``, ``mineral`` are absent from captions_708.csv) are
filled from later files. In the shipped files the CIFs of shared ids are identical, but band_gap
(4 of 24) and energy_above_hull (10 of 24) differ between the two revisions.
"""
from __future__ import annotations

import gzip

import ast
import csv
import math
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator

from crystalclip.errors import BadInput
from crystalclip.sources.base import Entry, Rejected

SOURCE = "mp40"
REQUIRED_COLUMNS = ("material_id", "cif", "prompt")
# columns kept in Entry.columns, with their type; absent or empty cells become None
KEPT_COLUMNS = {
    "material_id": str,
    "metallic": str,  # "metallic" / "insulator"
    "stability": str,  # "stable" / "metastable" / "unstable"
    "crystal_system": str,
    "band_gap": float,  # eV
    "mineral": str,  # structure-type name, often empty
    "energy_above_hull": float,  # eV/atom
    "space_group_number": int,
    "space_group_symbol": str,
}


def _raise_csv_limit() -> None:
    limit = sys.maxsize
    while True:  # a CIF in one cell can exceed the default 128 kB field limit
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def _open_text(path: str | Path):
    """A CSV, plain or gzipped (the package embeds its copies as .csv.gz)."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return open(path, newline="", encoding="utf-8-sig")


def is_mp40_csv(path: str | Path) -> bool:
    """True when the CSV's header has material_id, cif and prompt."""
    return set(REQUIRED_COLUMNS) <= set(read_header(path))


def read_header(path: str | Path) -> list[str]:
    _raise_csv_limit()
    with _open_text(path) as f:
        return next(csv.reader(f), [])


def parse_prompt(raw: str | None) -> list[str]:
    """One caption, or a Python-literal list of captions -> cleaned, non-empty, de-duplicated."""
    if raw is None:
        return []
    raw = str(raw).strip()
    items: list = [raw]
    if raw.startswith("[") and raw.endswith("]"):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, (list, tuple)):
            items = list(value)
    texts = [re.sub(r"\s+", " ", str(t)).strip() for t in items if t is not None]
    return list(dict.fromkeys(t for t in texts if t))


def _value(raw: str | None, kind: type):
    if raw is None:
        return None
    raw = raw.strip()
    if raw == "" or raw.lower() in ("nan", "none", "null"):
        return None
    if kind is str:
        return raw
    try:
        if kind is int:
            return int(float(raw))
        value = float(raw)
        return None if math.isnan(value) else value
    except ValueError:
        return None


def _read(path: Path) -> Iterator[Entry | Rejected]:
    _raise_csv_limit()
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BadInput(
                f"{path}: not an MP-40 caption table, missing column(s) {missing}; "
                f"available columns: {reader.fieldnames}"
            )
        for n, row in enumerate(reader, start=1):
            mid = (row.get("material_id") or "").strip()
            where = f"{path}:row {n}"
            if not mid:
                yield Rejected(f"{path.name}:row{n}", SOURCE, f"row {n}: empty material_id", where)
                continue
            cif = row.get("cif") or ""
            if not cif.strip():
                yield Rejected(mid, SOURCE, f"row {n}: empty cif cell", where)
                continue
            columns = {name: _value(row.get(name), kind) for name, kind in KEPT_COLUMNS.items()}
            yield Entry(
                id=mid,
                source=SOURCE,
                cif=cif,
                texts=parse_prompt(row.get("prompt")),
                group=mid,
                columns=columns,
                path=str(path),
                texts_generated=True,
            )


def _as_paths(paths: str | Path | Iterable[str | Path] | None) -> list[Path]:
    if paths is None:
        raise BadInput("mp40 needs the path(s) of its CSV file(s)")
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return [Path(p) for p in paths]


def iter_entries(
    paths: str | Path | Iterable[str | Path] | None = None,
    limit: int | None = None,
    path: str | Path | None = None,
    **_: object,
) -> Iterator[Entry | Rejected]:
    """Entries of one or several MP-40 CSVs, rows sharing a material id merged into one Entry.

    Order: first appearance of each material id. `limit` caps the number of Entries yielded.
    """
    files = _as_paths(paths if paths is not None else path)
    merged: dict[str, Entry] = {}
    rejected: list[Rejected] = []
    for file in files:
        for item in _read(file):
            if isinstance(item, Rejected):
                rejected.append(item)
                continue
            first = merged.get(item.id)
            if first is None:
                merged[item.id] = item
                continue
            first.texts = list(dict.fromkeys(first.texts + item.texts))
            for key, value in item.columns.items():
                if first.columns.get(key) is None and value is not None:
                    first.columns[key] = value
            if str(file) not in (first.path or "").split(";"):
                first.path = f"{first.path};{file}"
    yield from rejected
    for n, entry in enumerate(merged.values()):
        if limit is not None and n >= limit:
            return
        yield entry


def count(
    paths: str | Path | Iterable[str | Path] | None = None,
    limit: int | None = None,
    path: str | Path | None = None,
    **_: object,
) -> int:
    """Number of distinct material ids over the files (reads them; fast for MP-40-sized tables)."""
    ids: set[str] = set()
    _raise_csv_limit()
    for file in _as_paths(paths if paths is not None else path):
        with _open_text(file) as f:
            for row in csv.DictReader(f):
                mid = (row.get("material_id") or "").strip()
                if mid and (row.get("cif") or "").strip():
                    ids.add(mid)
    return len(ids) if limit is None else min(len(ids), limit)
