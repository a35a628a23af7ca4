"""Structures from whatever a user points at: CIF text, a file, a folder, a CSV/Parquet table with a
`cif` column, or structures in memory. `expand_inputs` is the one rule for which paths are structures."""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFound
from .cif import parse_cif
from .crystal import Crystal, StructureError

log = logging.getLogger(__name__)

CIF_SUFFIXES = {".cif", ".mcif"}
OTHER_SUFFIXES = {".vasp", ".poscar", ".extxyz", ".xyz"}
OTHER_NAMES = ("POSCAR", "CONTCAR")
TABLE_SUFFIXES = {".csv", ".parquet"}


@dataclass
class ReadFailure:
    """A file or row that gave no structure, with a one-line reason."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def read_text(path: str | os.PathLike) -> str:
    """A file's text, or StructureError for what a user must fix (empty, not UTF-8, unreadable)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise StructureError(f"cannot read file: {error.strerror or error}") from None
    if not data.strip():
        raise StructureError("empty file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)  # the BOM is not counted
        raise StructureError(f"not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset})") from None


def structure_files(folder: str | os.PathLike) -> list[Path]:
    """The structure files below a folder, at any depth, sorted by relative path: the one rule for
    which files in a folder are structures (CIF, POSCAR/CONTCAR, VASP, extxyz, and CSV/Parquet tables
    with a `cif` column, such as ../shared/data/mp-cifs; hidden ones skipped)."""
    root = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath) / name for name in filenames
                  if not name.startswith(".") and is_structure_file(Path(dirpath) / name)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def is_structure_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _has_cif_column(path)  # a table beside the structures (a list of ids) is not one
    return suffix in CIF_SUFFIXES or suffix in OTHER_SUFFIXES or path.name.startswith(OTHER_NAMES)


def _has_cif_column(path: Path) -> bool:
    """Whether a CSV/Parquet file has a `cif` column, from its schema or header line alone."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return "cif" in pq.read_schema(path).names
        import csv

        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            return "cif" in next(csv.reader(handle), [])
    except Exception:  # noqa: BLE001 - unreadable or not a table: not a structure file
        return False


def is_cif_text(item) -> bool:
    return isinstance(item, str) and ("\n" in item or item.lstrip().startswith("data_"))


def expand_inputs(inputs) -> list:
    """What a user points at -> a flat list of inputs: absolute file Paths (a folder gives its
    structure files, a CSV/Parquet table stays one input), CIF texts, and in-memory structures
    (Crystals, pymatgen Structures). Used by `data build`, `index`, `classify` and the API alike."""
    if isinstance(inputs, (str, os.PathLike, Crystal)) or hasattr(inputs, "lattice") or not isinstance(inputs, Iterable):
        inputs = [inputs]
    items = []
    for item in inputs:
        if is_cif_text(item):
            items.append(item)
        elif isinstance(item, (str, os.PathLike)):
            path = Path(item).expanduser().resolve()
            if path.is_dir():
                items.extend(structure_files(path))
            elif path.is_file():
                items.append(path)
            else:
                raise NotFound(f"no such file or folder: {item}")
        else:
            items.append(item)
    return items


def read_input(item) -> Iterator[tuple[Crystal | ReadFailure, str | None]]:
    """(Crystal or ReadFailure, path or None) for each structure of one expanded input."""
    if isinstance(item, Crystal):
        yield item, item.metadata.get("path")
    elif isinstance(item, Path):
        for found in _read_path(item, item.stem):
            yield found, str(item)
    elif is_cif_text(item):
        for found in _guard("<text>", lambda: parse_cif(item, "text")):
            yield found, None
    elif hasattr(item, "lattice") and hasattr(item, "species"):
        yield Crystal.from_pymatgen(item), None
    else:
        yield ReadFailure(repr(item)[:80], f"not a structure: {type(item).__name__}"), None


def iter_crystals(source) -> Iterator[Crystal | ReadFailure]:
    """Every structure in a file, folder (recursive), table or CIF text; failures are yielded, not
    raised. Structures of a folder are named by their path relative to it."""
    if isinstance(source, (str, os.PathLike)) and not is_cif_text(source) and Path(source).is_dir():
        root = Path(source)
        for file in structure_files(root):
            yield from _read_path(file, file.relative_to(root).with_suffix("").as_posix())
        return
    for item in expand_inputs(source):
        for found, _ in read_input(item):
            yield found


def read_structures(source: str | os.PathLike, errors: str = "warn") -> list:
    """pymatgen Structures with `.properties` holding id and CIF metadata (title, journal, year, ...).

    errors: "warn" logs each unreadable input and goes on, "raise" stops at the first one.
    """
    structures = []
    for item in iter_crystals(source):
        if isinstance(item, ReadFailure):
            if errors == "raise":
                raise StructureError(str(item))
            log.warning("skipped %s", item)
            continue
        structures.append(item.to_pymatgen())
    return structures


def _read_path(path: Path, crystal_id: str) -> Iterator[Crystal | ReadFailure]:
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        yield from _read_table(path)
    else:
        yield from _guard(str(path), lambda: _read_file(path, crystal_id))


def _read_file(path: Path, crystal_id: str) -> list[Crystal]:
    text = read_text(path)
    if path.suffix.lower() in CIF_SUFFIXES:
        return parse_cif(text, crystal_id)
    return _read_with_pymatgen(path, text, crystal_id)


def _read_with_pymatgen(path: Path, text: str, crystal_id: str) -> list[Crystal]:
    """POSCAR / extxyz: rare enough that pymatgen's and ASE's speed is fine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if path.suffix.lower() in (".extxyz", ".xyz"):
                from ase.io import read
                from pymatgen.io.ase import AseAtomsAdaptor

                frames = read(path, index=":")
                structures = [AseAtomsAdaptor.get_structure(atoms) for atoms in frames]
            else:
                from pymatgen.io.vasp import Poscar

                structures = [Poscar.from_str(text).structure]
        except Exception as error:  # any parser error means the file is unusable
            raise StructureError(f"unreadable {path.suffix or path.name} file: {str(error)[:200]}") from None
    return [
        Crystal.from_pymatgen(s, id=crystal_id if len(structures) == 1 else f"{crystal_id}#{i}")
        for i, s in enumerate(structures)
    ]


def _read_table(path: Path) -> Iterator[Crystal | ReadFailure]:
    """A CSV or Parquet table with a `cif` column (and an id column: id, material_id or name)."""
    import pandas as pd

    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as error:  # noqa: BLE001 - any reader error means the table is unusable
        yield ReadFailure(str(path), f"unreadable table: {str(error).splitlines()[0][:200]}")
        return
    if "cif" not in table.columns:
        yield ReadFailure(str(path), f"no 'cif' column (columns: {', '.join(map(str, table.columns))})")
        return
    id_column = next((c for c in ("id", "material_id", "name") if c in table.columns), None)
    for row, record in enumerate(table.to_dict("records")):
        crystal_id = str(record[id_column]) if id_column else f"{path.stem}:{row}"
        cif = record["cif"]
        if not isinstance(cif, str) or not cif.strip():
            yield ReadFailure(f"{path} row {row}", "empty cif cell")
            continue
        extra = {k: v for k, v in record.items() if k != "cif"}
        for item in _guard(f"{path} row {row}", lambda: parse_cif(cif, crystal_id)):
            if isinstance(item, Crystal):
                item.metadata.update(extra)
            yield item


def _guard(where: str, parse) -> Iterator[Crystal | ReadFailure]:
    try:
        yield from parse()
    except StructureError as error:
        yield ReadFailure(where, str(error))
