"""Title -> structure join at arXiv scale: arXiv cond-mat titles x Materials Project formulas.

Reads ../shared/data/arxiv/condmat_titles.parquet (76,729 titles) and the reduced formulas of all
../shared/data/mp-cifs/mp_cifs_0*.parquet structures (152,124; the ``_chemical_formula_structural``
line pymatgen writes, which is ``Composition(_chemical_formula_sum).reduced_formula``; one file at
a time, the CIF text in batches), runs ``formulas_in_title`` over every title and
``join_titles`` against the MP formulas, and prints JSON.

    python benchmarks/title_join.py [--check-formulas 500]
"""
from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from crystalclip.text.title_formulas import formulas_in_title, join_titles

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
_STRUCTURAL = re.compile(r"^_chemical_formula_structural\s+(\S+)", re.M)
_SUM = re.compile(r"^_chemical_formula_sum\s+'?([^'\n]+?)'?\s*$", re.M)


def mp_formulas(check_every: int = 0) -> tuple[dict[str, str], int]:
    """{material_id: reduced formula}, and how many of the checked ones disagree with pymatgen."""
    out, bad, n = {}, 0, 0
    for path in sorted((DATA / "mp-cifs").glob("mp_cifs_0*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=2000,
                                                       columns=["material_id", "cif"]):
            d = batch.to_pydict()
            for mid, cif in zip(d["material_id"], d["cif"]):
                out[mid] = _STRUCTURAL.search(cif).group(1)
                if check_every and n % check_every == 0:
                    from pymatgen.core import Composition
                    total = Composition(_SUM.search(cif).group(1)).reduced_formula
                    bad += total != out[mid]
                n += 1
    return out, bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-formulas", type=int, default=500,
                    help="check every N-th MP formula against pymatgen (0: none)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    mp, mismatched = mp_formulas(args.check_formulas)
    t_mp = time.perf_counter() - t0
    by_formula = Counter(mp.values())
    known = set(by_formula)

    table = pq.read_table(DATA / "arxiv" / "condmat_titles.parquet", columns=["arxiv_id", "title"])
    ids, titles = table.column("arxiv_id").to_pylist(), table.column("title").to_pylist()
    t0 = time.perf_counter()
    found = [formulas_in_title(t) for t in titles]
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    joined = join_titles(zip(ids, titles), known)
    t_join = time.perf_counter() - t0

    formulas = Counter(f for fs in found for f in fs)
    titled_ids = {i for v in joined.values() for i in v}
    structures = sum(by_formula[f] for f in joined)
    pairs = sum(by_formula[f] * len(v) for f, v in joined.items())
    top = sorted(joined.items(), key=lambda kv: -len(kv[1]))[:10]
    print(json.dumps({
        "titles": len(titles),
        "titles_with_formula": sum(1 for fs in found if fs),
        "formula_mentions": sum(formulas.values()),
        "distinct_formulas": len(formulas),
        "distinct_formulas_in_mp": sum(1 for f in formulas if f in known),
        "mentions_in_mp": sum(n for f, n in formulas.items() if f in known),
        "titles_with_mp_formula": len(titled_ids),
        "mp_structures": len(mp),
        "mp_distinct_formulas": len(known),
        "mp_structures_with_title": structures,
        "structure_title_pairs": pairs,
        "top_formulas_by_titles": {f: len(v) for f, v in top},
        "mp_formula_check_mismatches": mismatched,
        "seconds_read_mp_formulas": round(t_mp, 2),
        "seconds_extract_all_titles": round(t_extract, 2),
        "seconds_join_all_titles": round(t_join, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
