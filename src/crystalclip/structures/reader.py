"""Structures from whatever a user points at: CIF text, a file, a folder, a CSV with a `cif` column."""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .cif import parse_cif
from .crystal import Crystal, StructureError

log = logging.getLogger(__name__)

CIF_SUFFIXES = {".cif", ".mcif"}
OTHER_SUFFIXES = {".vasp", ".poscar", ".extxyz", ".xyz"}
OTHER_NAMES = ("POSCAR", "CONTCAR")


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


def iter_crystals(source: str | os.PathLike) -> Iterator[Crystal | ReadFailure]:
    """Every structure in a file, folder (recursive), CSV or CIF text; failures are yielded, not raised."""
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("data_")):
        yield from _guard("<text>", lambda: parse_cif(source, "text"))
        return
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _is_structure_file(p))
        for file in files:
            yield from _guard(str(file), lambda f=file: _read_file(f, str(f.relative_to(path).with_suffix(""))))
    elif path.is_file() and path.suffix.lower() == ".csv":
        yield from _read_csv(path)
    elif path.is_file():
        yield from _guard(str(path), lambda: _read_file(path, path.stem))
    else:
        raise FileNotFoundError(f"no such file or folder: {path}")


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


def _is_structure_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in CIF_SUFFIXES or suffix in OTHER_SUFFIXES or path.name.startswith(OTHER_NAMES)


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


def _read_csv(path: Path) -> Iterator[Crystal | ReadFailure]:
    import pandas as pd

    table = pd.read_csv(path)
    if "cif" not in table.columns:
        raise StructureError(f"{path}: no 'cif' column (columns: {', '.join(map(str, table.columns))})")
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
