"""A directory of CIF files (COD-style): the structure files below it, at any depth.

Files are found by ``structures.structure_files`` (the same rule as ``index`` and ``classify``), in a
deterministic order (sorted by relative POSIX path); one that is not a CIF is rejected with its reason. Files are read as bytes and
decoded as UTF-8 (a BOM is dropped); what cannot be used becomes a ``Rejected`` with a one-line
reason: an empty file, bytes that are not UTF-8 (with the offset of the first bad byte), an
unreadable file. Nothing is parsed here.

``texts`` is empty: the integrator fills in the publication title it parses from the CIF
(``_publ_section_title``, cleaned with ``crystalclip.text.titles.clean_title``). ``group`` is None
for the same reason (it can be derived from the parsed journal/DOI).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from crystalclip.sources.base import Entry, Rejected
from crystalclip.errors import NotFound
from crystalclip.structures import StructureError, read_text, structure_files
from crystalclip.structures.reader import CIF_SUFFIXES

SOURCE = "cif-folder"


def entry_id(path: Path, root: Path) -> str:
    """Relative path without the suffix: "sub/1000001.cif" -> "sub/1000001"."""
    return path.relative_to(root).with_suffix("").as_posix()


def read_cif(path: Path, eid: str) -> Entry | Rejected:
    if path.suffix.lower() not in CIF_SUFFIXES:
        return Rejected(eid, SOURCE, "not a CIF: a folder source pairs each structure with the publication "
                                     "title in its CIF", str(path))
    try:
        text = read_text(path)
    except StructureError as error:
        return Rejected(eid, SOURCE, str(error), str(path))
    return Entry(id=eid, source=SOURCE, cif=text, texts=[], group=None, columns={}, path=str(path))


def iter_entries(
    root: str | Path | None = None,
    limit: int | None = None,
    path: str | Path | None = None,
    **_: object,
) -> Iterator[Entry | Rejected]:
    """Entries (or Rejected) for each CIF under root; `limit` caps the number of files looked at."""
    base = _root(root, path)
    for n, file in enumerate(structure_files(base)):
        if limit is not None and n >= limit:
            return
        yield read_cif(file, entry_id(file, base))


def count(root: str | Path | None = None, limit: int | None = None,
          path: str | Path | None = None, **_: object) -> int:
    n = len(structure_files(_root(root, path)))
    return n if limit is None else min(n, limit)


def _root(root, path) -> Path:
    base = Path(root if root is not None else path)
    if not base.is_dir():
        raise NotFound(f"not a directory: {base}")
    return base
