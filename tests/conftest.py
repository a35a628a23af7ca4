"""Shared real data for the tests: ../shared/data (mp40, cif-edge-cases) and AMCSD from larixite."""
from functools import lru_cache
from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MP40 = SHARED / "mp40"
EDGE_CASES = SHARED / "cif-edge-cases"


@lru_cache
def mp40_table() -> pd.DataFrame:
    return pd.read_csv(MP40 / "captions_1000.csv")


@lru_cache
def amcsd_cifs(step: int = 40) -> list[tuple[str, str]]:
    """(id, CIF text) of every step-th AMCSD entry."""
    from crystalclip.sources import amcsd

    entries = [e for e in amcsd.iter_entries() if hasattr(e, "cif")]
    return [(e.id, e.cif) for e in entries[::step]]
