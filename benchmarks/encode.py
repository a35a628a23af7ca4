"""Structures/s and texts/s through the facade (`model.encode_structures`, `model.encode_texts`).

Structures go the whole way: CIF text -> Crystal -> graph -> CGCNN + formula channel -> unit rows.
The reference in the same run is pymatgen parsing alone (`Structure.from_str`), the first step of
every pymatgen-based pipeline, so the ratio says how our whole encode compares to it.

    python benchmarks/encode.py [--model default] [--n 1000] [--json]
"""
from __future__ import annotations

import argparse
import ast
import json
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / ".." / "shared" / "data" / "mp40" / "captions_1000.csv"


def rate(fn, items) -> float:
    start = time.perf_counter()
    fn(items)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import crystalclip as cc
    from pymatgen.core import Structure

    table = pd.read_csv(CSV).head(args.n)
    cifs = table["cif"].tolist()
    texts = [c for captions in table["prompt"] for c in ast.literal_eval(captions)][: args.n]
    model = cc.load(args.model)
    model.encode_structures(cifs[:8])  # warm-up: imports, first graph, thread pools
    model.encode_texts(texts[:8])

    structures_per_s = rate(model.encode_structures, cifs)
    texts_per_s = rate(model.encode_texts, texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pymatgen_parse_per_s = rate(lambda xs: [Structure.from_str(x, fmt="cif") for x in xs], cifs)
    result = {
        "structures": len(cifs), "texts": len(texts),
        "structures_per_s": round(structures_per_s, 1), "texts_per_s": round(texts_per_s, 1),
        "pymatgen_parse_per_s": round(pymatgen_parse_per_s, 1),
        "encode_vs_pymatgen_parse": round(structures_per_s / pymatgen_parse_per_s, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
