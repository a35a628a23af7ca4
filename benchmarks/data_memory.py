"""Memory of training's data side as the rows grow: opening a dataset as training does (`Dataset`:
the columns of the row table that training reads, the own text pool) and building the default
recipe's training pool (own texts with their formula-free twins, the training rows only). Each dataset
is measured in a fresh process: the anonymous memory held (/proc RssAnon) after each step, above the
imports; not a peak, and the second reading can be lower than the first when memory is freed.

No text tower runs, so it needs no feature cache: it isolates what grows with the rows (the row table,
the pools) from the memory-mapped graphs and caches. `benchmarks/train_memory.py` measures whole runs.

    python benchmarks/data_memory.py data/all180 /tmp/crystalclip-train-memory/x6 [--json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MEASURE = """
import json, sys, time
def anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) / 1024
import numpy, pandas, torch, lightning  # imported before the baseline: not data
from crystalclip.data.dataset import Dataset
from crystalclip.training import TRAINING_COLUMNS
base, started = anon_mb(), time.perf_counter()
data = Dataset(sys.argv[1], columns=TRAINING_COLUMNS)  # the table as training opens it
opened = anon_mb()
pool = data.text_pool("pairs", formula_free=True).of_rows(data.rows("train"))
pooled = anon_mb()
print(json.dumps({"rows": len(data), "train_texts": len(pool.texts), "dataset_MB": round(opened - base),
                  "with_train_pool_MB": round(pooled - base), "seconds": round(time.perf_counter() - started, 1)}))
"""


def measure(directory: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(directory)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", type=Path, nargs="+", help="dataset directories (e.g. one and it repeated)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = [{"dataset": str(d), **measure(d)} for d in args.datasets]
    if args.json:
        print(json.dumps({"runs": runs}))
        return
    for r in runs:
        print(f"{r['rows']:>10,} rows  dataset {r['dataset_MB']:>6,} MB  + training pool {r['with_train_pool_MB']:>6,} MB"
              f"  ({r['train_texts']:,} training texts, {r['seconds']} s)  {r['dataset']}")


if __name__ == "__main__":
    main()
