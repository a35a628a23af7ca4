"""The metadata rows of an index: what is stored beside each vector, the exact filters over it, and
the one result shape every search returns (CLI, API and server alike)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import BadInput
from .structures import Crystal
from .structures.properties import spacegroup_symbols
from .structures.symmetry import CRYSTAL_SYSTEMS, crystal_system, spacegroup_number

META_COLUMNS = ["id", "source", "path", "formula", "elements", "spacegroup_number", "crystal_system", "text"]
RESULT_FIELDS = ["rank", "id", "source", "formula", "spacegroup_number", "spacegroup_symbol", "crystal_system", "score",
                 "text", "path"]


def filter_mask(meta: pd.DataFrame, elements=None, spacegroup=None, crystal_system_name=None,
                source=None) -> np.ndarray | None:
    """Rows matching every filter given (None when no filter is): `elements` all present, `spacegroup`
    one of the numbers, `crystal_system` by name, `source` one of the names; BadInput for a bad value."""
    mask = None

    def both(new):
        return new if mask is None else mask & new

    if elements:
        wanted = {e.strip() for e in (elements.split(",") if isinstance(elements, str) else elements) if e.strip()}
        from pymatgen.core.periodic_table import Element

        for symbol in wanted:
            if not Element.is_valid_symbol(symbol):
                raise BadInput(f"unknown element {symbol!r} in the elements filter")
        mask = both(meta["elements"].map(lambda have: have is not None and wanted <= set(have)).to_numpy(bool))
    if spacegroup is not None and spacegroup != "":
        numbers = [spacegroup] if isinstance(spacegroup, (int, str)) else list(spacegroup)
        by_symbol = {symbol.replace("_", "").lower(): n for n, symbol in spacegroup_symbols().items()}
        try:
            numbers = {by_symbol.get(n.strip().replace("_", "").replace(" ", "").lower()) or int(n)
                       for part in numbers for n in str(part).split(",") if str(n).strip()}
        except ValueError:
            raise BadInput(f"space group must be a number 1-230 or a symbol such as Fm-3m or P2_1/c (several: "
                           f"comma-separated), not {spacegroup!r}") from None
        if not numbers or not all(1 <= n <= 230 for n in numbers):
            raise BadInput(f"space group must be a number 1-230, not {spacegroup!r}")
        mask = both(meta["spacegroup_number"].isin(numbers).fillna(False).to_numpy(bool))
    if crystal_system_name:
        name = crystal_system_name.strip().lower()
        known = [n for _, n in CRYSTAL_SYSTEMS]
        if name not in known:
            raise BadInput(f"unknown crystal system {crystal_system_name!r} (one of {', '.join(known)})")
        mask = both((meta["crystal_system"] == name).fillna(False).to_numpy(bool))
    if source:
        wanted = {s.strip() for s in (source.split(",") if isinstance(source, str) else source) if s.strip()}
        known = set(meta["source"].dropna().astype(str))
        unknown = sorted(wanted - known)
        if unknown:
            raise BadInput(f"unknown source {unknown[0]!r} in this index (its sources: {', '.join(sorted(known)) or 'none'})")
        mask = both(meta["source"].isin(wanted).fillna(False).to_numpy(bool))
    return mask


def result(row: dict, rank: int, score: float) -> dict:
    """A metadata row as a search result (RESULT_FIELDS)."""
    sg = row["spacegroup_number"]
    return {"rank": rank, "id": str(row["id"]), "source": text_or_none(row["source"]), "formula": row["formula"],
            "spacegroup_number": None if pd.isna(sg) else int(sg),
            "spacegroup_symbol": None if pd.isna(sg) else spacegroup_symbols().get(int(sg)), "crystal_system": row["crystal_system"],
            "score": round(score, 4), "text": text_or_none(row["text"]), "path": text_or_none(row["path"])}


def meta_row(crystal: Crystal, path: str | None) -> dict:
    try:
        number = spacegroup_number(crystal)
    except Exception:  # a symmetry search that fails leaves the space group unknown, never the build
        number = None
    return {"id": crystal.id, "source": None, "path": path, "formula": crystal.reduced_formula(),
            "elements": sorted(crystal.composition()), "spacegroup_number": number,
            "crystal_system": crystal_system(number), "text": text_or_none(crystal.metadata.get("title"))}


def text_or_none(value) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)
