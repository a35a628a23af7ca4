"""A folder of tables with one CIF per row: Parquet (or CSV) files with ``material_id`` and ``cif``
columns, such as ``../shared/data/mp-cifs`` (152,124 Materials Project structures in 8 shards).

Files are read in name order, shard by shard and batch by batch (pyarrow ``iter_batches`` /
a streaming CSV reader), so at most one batch of CIF text is in memory; ``count`` reads the row
counts from the Parquet footers without touching the CIF column. ``limit`` takes the first N rows.

Each row becomes an Entry with its id kept (``mp-1234``), source ``"mp"`` for Materials Project
ids (``mp-`` / ``mvc-``) and ``"cif-table"`` otherwise, ``group`` = the material id (a material's
structures share a split), and link-ready columns: ``material_id`` and ``url``
(https://next-gen.materialsproject.org/materials/mp-1234 for MP ids, else None). The tables carry no
text: ``texts=[]`` and ``texts_generated=True`` (descriptions and titles are attached later). A
row without an id or CIF, or with an id seen before, is a Rejected naming the file and row.

Options: ``root`` (or ``path``; a folder, or one table file), ``limit``, ``id_column``
("material_id"), ``cif_column`` ("cif"), ``batch_size`` (256 rows).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from crystalclip.errors import BadInput, NotFound
from crystalclip.sources.base import Entry, Rejected

SOURCE = "cif-table"
MP_SOURCE = "mp"
ID_COLUMN, CIF_COLUMN = "material_id", "cif"
SUFFIXES = (".parquet", ".csv", ".csv.gz")
BATCH_SIZE = 256
MP_URL = "https://next-gen.materialsproject.org/materials/{}"
_MP_PREFIXES = ("mp-", "mvc-")

__all__ = ["count", "is_cif_table_dir", "iter_entries", "source_for", "table_files", "url_for"]


def _is_table(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(SUFFIXES)


def table_files(root: str | Path) -> list[Path]:
    """The table files of a folder (top level, sorted by name), or [root] for one table file."""
    root = Path(root)
    if root.is_file():
        return [root] if _is_table(root) else []
    if not root.is_dir():
        raise NotFound(f"not a directory: {root}")
    return sorted((p for p in root.iterdir() if _is_table(p)), key=lambda p: p.name)


def _columns(path: Path) -> list[str]:
    """Column names of a table file, read from the Parquet schema or the CSV header only."""
    if path.name.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    import csv
    import gzip
    import sys

    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])


def is_cif_table_dir(path: str | Path, id_column: str = ID_COLUMN, cif_column: str = CIF_COLUMN) -> bool:
    """True for a folder whose top level holds Parquet (or CSV) tables, every one with an id and a
    cif column, and no .cif files (a folder of CIF files is the cif-folder source)."""
    path = Path(path)
    if not path.is_dir():
        return False
    try:
        entries = list(path.iterdir())
        files = [p for p in entries if _is_table(p)]
        if not files or any(p.suffix.lower() == ".cif" for p in entries):
            return False
        return all({id_column, cif_column} <= set(_columns(p)) for p in files)
    except Exception:  # noqa: BLE001 - unreadable or not a table (pyarrow raises its own error types)
        return False


def source_for(material_id: str) -> str:
    """'mp' for a Materials Project id, else 'cif-table'."""
    return MP_SOURCE if material_id.startswith(_MP_PREFIXES) else SOURCE


def url_for(material_id: str) -> str | None:
    """The Materials Project page of an MP id, None for other ids."""
    return MP_URL.format(material_id) if material_id.startswith(_MP_PREFIXES) else None


def _batches(path: Path, id_column: str, cif_column: str, batch_size: int) -> Iterator[tuple[list, list]]:
    """(ids, cifs) lists, one batch of rows at a time."""
    if path.name.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path)
        missing = [c for c in (id_column, cif_column) if c not in table.schema_arrow.names]
        if missing:
            raise BadInput(f"{path}: no column(s) {missing}; available columns: {table.schema_arrow.names}")
        for batch in table.iter_batches(batch_size=batch_size, columns=[id_column, cif_column]):
            yield batch.column(id_column).to_pylist(), batch.column(cif_column).to_pylist()
        return
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _columns(path)
    missing = [c for c in (id_column, cif_column) if c not in header]
    if missing:
        raise BadInput(f"{path}: no column(s) {missing}; available columns: {header}")
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 22),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(include_columns=[id_column, cif_column],
                                             column_types={id_column: pa.string(), cif_column: pa.string()}),
    )
    for batch in reader:
        yield batch.column(id_column).to_pylist(), batch.column(cif_column).to_pylist()


def iter_entries(
    root: str | Path | None = None,
    limit: int | None = None,
    path: str | Path | None = None,
    id_column: str = ID_COLUMN,
    cif_column: str = CIF_COLUMN,
    batch_size: int = BATCH_SIZE,
    **_: object,
) -> Iterator[Entry | Rejected]:
    """Entries (or Rejected) for the rows of every table under root, in file then row order;
    ``limit`` caps the number of rows looked at."""
    base = root if root is not None else path
    if base is None:
        raise BadInput("cif-table needs the folder (root=...) of its tables")
    seen: set[str] = set()
    looked = 0
    for file in table_files(base):
        row = 0
        for ids, cifs in _batches(file, id_column, cif_column, batch_size):
            for raw_id, cif in zip(ids, cifs):
                if limit is not None and looked >= limit:
                    return
                looked += 1
                row += 1
                where = f"{file}:row {row}"
                mid = (raw_id or "").strip() if isinstance(raw_id, str) else str(raw_id or "").strip()
                if not mid:
                    yield Rejected(f"{file.name}:row{row}", SOURCE, f"row {row}: empty {id_column}", where)
                    continue
                if mid in seen:
                    yield Rejected(mid, source_for(mid), f"row {row}: duplicate id {mid!r}", where)
                    continue
                seen.add(mid)
                if not isinstance(cif, str) or not cif.strip():
                    yield Rejected(mid, source_for(mid), f"row {row}: empty {cif_column} cell", where)
                    continue
                yield Entry(id=mid, source=source_for(mid), cif=cif, texts=[], group=mid,
                            columns={"material_id": mid, "url": url_for(mid)}, path=where, texts_generated=True)


def count(
    root: str | Path | None = None,
    limit: int | None = None,
    path: str | Path | None = None,
    id_column: str = ID_COLUMN,
    **_: object,
) -> int:
    """Rows over all tables: Parquet footers (no CIF text read); CSVs read for their id column."""
    base = root if root is not None else path
    if base is None:
        raise BadInput("cif-table needs the folder (root=...) of its tables")
    total = 0
    for file in table_files(base):
        if file.name.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            total += pq.ParquetFile(file).metadata.num_rows
        else:
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(file, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                                   convert_options=pacsv.ConvertOptions(include_columns=[id_column]))
            total += table.num_rows
        if limit is not None and total >= limit:
            return limit
    return total if limit is None else min(total, limit)
