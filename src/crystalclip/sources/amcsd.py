"""AMCSD: the American Mineralogist Crystal Structure Database shipped with PyPI ``larixite``.

``larixite/amcsd_cif1.db`` is an SQLite file with 9,275 experimental structures. The CIF text of an
entry is not stored; larixite rebuilds it from table columns (``AMCSD.get_cif(id).ciftext``), at about
4 ms per entry through SQLAlchemy. Here the same text is produced from a few bulk queries and
larixite's own decoders and writer (``get_optarray`` and ``CifStructure.ciftext``), about 20x faster.

The database is opened read-only (``file:...?mode=ro``): larixite's default ``AMCSD()`` constructor
may ALTER the table, so it must never be used on the shipped file.

Texts: the cleaned publication title (``crystalclip.text.titles.clean_title``), then the mineral
name when there is one. About 750 titles are Wyckoff's placeholder "Second edition. Interscience
Publishers, ..." and clean to ""; such entries carry the mineral name only, or no text at all.
"""
from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

from crystalclip.errors import NotFound
from crystalclip.sources.base import Entry, Rejected
from crystalclip.text.titles import clean_title

SOURCE = "amcsd"
_MISSING = "<missing>"
_ATOM_ARRAYS = (
    "atoms_x", "atoms_y", "atoms_z", "atoms_occupancy", "atoms_u_iso", "atoms_aniso_u11",
    "atoms_aniso_u22", "atoms_aniso_u33", "atoms_aniso_u12", "atoms_aniso_u13", "atoms_aniso_u23",
)
_CELL = ("a", "b", "c", "alpha", "beta", "gamma", "cell_volume", "crystal_density")


def default_db_path() -> Path:
    """Where larixite keeps its AMCSD file (importing only the package, not its heavy modules)."""
    import importlib.util

    spec = importlib.util.find_spec("larixite")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("the AMCSD source needs the 'larixite' package: pip install larixite")
    return Path(list(spec.submodule_search_locations)[0]) / "amcsd_cif1.db"


def connect(db_path: str | Path | None = None) -> sqlite3.Connection:
    """A read-only SQLite connection: nothing can write to the file through it."""
    path = Path(db_path) if db_path is not None else default_db_path()
    if not path.is_file():
        raise NotFound(f"AMCSD database not found: {path}")
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def count(limit: int | None = None, db_path: str | Path | None = None, **_: object) -> int:
    con = connect(db_path)
    try:
        (n,) = con.execute("SELECT count(*) FROM cif").fetchone()
    finally:
        con.close()
    return n if limit is None else min(n, limit)


def _cell_value(val):
    # exactly what AMCSD.get_cif does to a cell parameter (as_strings=False)
    if val is not None:
        if "(" in val:
            val = val.split("(")[0]
        if "," in val and "." not in val:
            val = val.replace(",", ".")
        try:
            val = float(val)
        except Exception:
            pass
    return val


def _atom_array(raw, decode):
    # exactly what AMCSD.get_cif does to an atom array: None when absent, list of floats otherwise;
    # on a decoding error larixite leaves the attribute unset (its default: None)
    try:
        val = decode(raw)
        if val == "0":
            return None
        return [2.0 if v in ("?", ".") else float(v) for v in val]
    except Exception:
        return None


def _authors(con: sqlite3.Connection, pub_ids: set[int] | None) -> dict[int, tuple[str, ...]]:
    # larixite's query has no ORDER BY; SQLite scans publication_authors in rowid order, so the
    # authors come in rowid order (checked against ciftext in tests/test_sources.py)
    rows = con.execute(
        "SELECT pa.publication_id, a.name FROM publication_authors pa "
        "JOIN authors a ON a.id = pa.author_id ORDER BY pa.rowid"
    )
    out: dict[int, list[str]] = defaultdict(list)
    for pub_id, name in rows:
        if pub_ids is None or pub_id in pub_ids:
            out[pub_id].append(name)
    return {k: tuple(v) for k, v in out.items()}


def iter_entries(
    limit: int | None = None,
    db_path: str | Path | None = None,
    ids: list[int] | None = None,
    **_: object,
) -> Iterator[Entry | Rejected]:
    """One Entry per AMCSD structure, ordered by AMCSD id; `ids` selects given ids only."""
    from larixite.amcsd import CifPublication, CifStructure
    from larixite.amcsd_utils import get_optarray

    path = Path(db_path) if db_path is not None else default_db_path()
    con = connect(path)
    con.row_factory = sqlite3.Row
    try:
        minerals = dict(con.execute("SELECT id, name FROM minerals"))
        spacegroups = {r["id"]: SimpleNamespace(**dict(r)) for r in con.execute("SELECT * FROM spacegroups")}
        pubs = {r["id"]: r for r in con.execute("SELECT * FROM publications")}
        authors = _authors(con, None)
        sql = "SELECT * FROM cif"
        params: list = []
        if ids is not None:
            sql += f" WHERE id IN ({','.join('?' * len(ids))})"
            params = [int(i) for i in ids]
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        for row in con.execute(sql, params):
            cif_id = row["id"]
            eid = f"{SOURCE}:{cif_id}"
            try:
                entry = _entry(row, minerals, spacegroups, pubs, authors, CifPublication,
                               CifStructure, get_optarray, path)
            except Exception as exc:  # a malformed row: report it, keep going
                yield Rejected(eid, SOURCE, f"cannot rebuild CIF: {type(exc).__name__}: {exc}",
                               str(path))
                continue
            yield entry
    finally:
        con.close()


class _Mineral:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


def _entry(row, minerals, spacegroups, pubs, authors, CifPublication, CifStructure, get_optarray,
           path) -> Entry:
    cif_id = row["id"]
    mineral_name = minerals.get(row["mineral_id"])
    sgroup = spacegroups[row["spacegroup_id"]]
    hm_symbol = sgroup.hm_notation
    if "%var" in hm_symbol:
        hm_symbol = hm_symbol.split("%var")[0]
    prow = pubs[row["publication_id"]]
    pub = CifPublication(prow["id"], prow["journalname"], prow["year"], prow["volume"],
                         prow["page_first"], prow["page_last"], authors.get(prow["id"], ()))
    st = CifStructure(ams_id=cif_id, publication=pub, mineral=_Mineral(mineral_name),
                      spacegroup=sgroup, hm_symbol=hm_symbol)
    for attr in ("formula_title", "compound", "formula", "pub_title"):
        setattr(st, attr, row[attr])
    for attr in _CELL:
        setattr(st, attr, _cell_value(row[attr]))
    for attr in ("atoms_sites", "atoms_aniso_label"):
        val = row[attr]
        setattr(st, attr, _MISSING if val in (None, _MISSING) else json.loads(val))
    if st.atoms_sites not in (None, _MISSING):
        st.natoms = len(st.atoms_sites)
        for attr in _ATOM_ARRAYS:
            setattr(st, attr, _atom_array(row[attr], get_optarray))
    ciftext = st.ciftext

    title = clean_title(row["pub_title"])
    mineral = mineral_name if mineral_name not in (None, "", _MISSING) else None
    texts = [t for t in (title, mineral) if t]
    texts = list(dict.fromkeys(texts))
    return Entry(
        id=f"{SOURCE}:{cif_id}",
        source=SOURCE,
        cif=ciftext,
        texts=texts,
        group=f"amcsd-pub:{prow['id']}",
        columns={
            "amcsd_id": cif_id,
            "publication_id": prow["id"],
            "journal": prow["journalname"],
            "year": prow["year"],
            "authors": list(pub.authors),
            "mineral": mineral,
            "title": title,
        },
        path=f"{path}#{cif_id}",
        texts_generated=False,
    )
