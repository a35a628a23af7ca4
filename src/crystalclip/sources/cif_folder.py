"""A directory of CIF files (COD-style): every ``*.cif`` below it, at any depth.

Files are found recursively, the suffix matched case-insensitively (``.cif``, ``.CIF``), and
yielded in a deterministic order (sorted by relative POSIX path). Files are read as bytes and
decoded as UTF-8 (a BOM is dropped); what cannot be used becomes a ``Rejected`` with a one-line
reason: an empty file, bytes that are not UTF-8 (with the offset of the first bad byte), an
unreadable file. Nothing is parsed here.

``texts`` is empty: the integrator fills in the publication title it parses from the CIF
(``_publ_section_title``, cleaned with ``crystalclip.text.titles.clean_title``). ``group`` is None
for the same reason (it can be derived from the parsed journal/DOI).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from crystalclip.sources.base import Entry, Rejected
from crystalclip.structures import StructureError, read_text

SOURCE = "cif-folder"


def find_cifs(root: str | Path) -> list[Path]:
    """All *.cif files under root (recursive, case-insensitive suffix), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.lower().endswith(".cif") and not name.startswith("."):
                found.append(Path(dirpath) / name)
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    return found


def entry_id(path: Path, root: Path) -> str:
    """Relative path without the suffix: "sub/1000001.cif" -> "sub/1000001"."""
    rel = path.relative_to(root).as_posix()
    return rel[: -len(".cif")]


def read_cif(path: Path, eid: str) -> Entry | Rejected:
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
    base = Path(root if root is not None else path)
    for n, file in enumerate(find_cifs(base)):
        if limit is not None and n >= limit:
            return
        yield read_cif(file, entry_id(file, base))


def count(root: str | Path | None = None, limit: int | None = None,
          path: str | Path | None = None, **_: object) -> int:
    n = len(find_cifs(Path(root if root is not None else path)))
    return n if limit is None else min(n, limit)
