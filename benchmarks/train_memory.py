"""Peak memory of `crystalclip train` as the data grows: a dataset, and the same dataset repeated K
times (a simulated larger one: every row copied under new ids, in the same split, graphs and caches
repeated, so the text tower has nothing new to read).

Each run trains for a short wall-clock budget with short epochs; the process tree (DataLoader
workers included) is sampled from /proc (benchmarks/rss_sampler.py): anonymous memory is what
training allocated, file-backed pages are the memory-mapped graphs and feature caches, which the
kernel drops and re-reads under pressure.

    python benchmarks/train_memory.py data/all180 --repeat 6 [--minutes 2] [--workers 1] [--json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rss_sampler import sample  # noqa: E402


def repeated(source: Path, out: Path, times: int) -> Path:
    """`source` with every row repeated `times` (ids "<id>~k" for the copies k >= 1)."""
    if (out / "summary.json").is_file():
        return out
    work = out.with_name(out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    (work / "graphs").mkdir(parents=True)
    table = pq.read_table(source / "pairs.parquet")
    ids = table.column("id").to_pylist()
    copies = [[i if k == 0 else f"{i}~{k}" for i in ids] for k in range(times)]
    with pq.ParquetWriter(work / "pairs.parquet", table.schema) as writer:
        for k in range(times):
            column = pa.array(copies[k], type=table.schema.field("id").type)
            writer.write_table(table.set_column(table.schema.get_field_index("id"), "id", column))
    del table
    graphs = source / "graphs"
    for name in ("edge_src", "edge_dst", "edge_dist", "species_site", "species_z", "species_occ", "num_sites"):
        np.save(work / "graphs" / f"{name}.npy", np.tile(np.load(graphs / f"{name}.npy"), times))
    for name in ("edge_offsets", "species_offsets"):
        offsets = np.load(graphs / f"{name}.npy")
        np.save(work / "graphs" / f"{name}.npy",
                np.concatenate([offsets[:-1] + k * offsets[-1] for k in range(times)] + [[times * offsets[-1]]]))
    meta = json.loads((graphs / "meta.json").read_text())
    (work / "graphs" / "meta.json").write_text(json.dumps({**meta, "num_graphs": times * meta["num_graphs"]}))
    (work / "graphs" / "ids.json").write_text(json.dumps([i for c in copies for i in c]))
    for path in (source / "texts").glob("*.parquet"):  # derived texts: each copy keeps its row's
        texts = pq.read_table(path)
        (work / "texts").mkdir(exist_ok=True)
        index = {i: n for n, i in enumerate(ids)}
        rows = [index[i] for i in texts.column("id").to_pylist()]
        parts = [texts.set_column(0, "id", pa.array([copies[k][r] for r in rows])) for k in range(times)]
        pq.write_table(pa.concat_tables(parts), work / "texts" / path.name)
    for cache in (source / "symmetry_cache").glob("symprec-*"):
        (work / "symmetry_cache" / cache.name).mkdir(parents=True)
        np.save(work / "symmetry_cache" / cache.name / "numbers.npy", np.tile(np.load(cache / "numbers.npy"), times))
        np.save(work / "symmetry_cache" / cache.name / "values.npy", np.tile(np.load(cache / "values.npy"), (times, 1)))
        np.save(work / "symmetry_cache" / cache.name / "ids.npy", np.array([i for c in copies for i in c]))
    shutil.copytree(source / "text_cache", work / "text_cache")  # the same texts: every lookup hits
    summary = json.loads((source / "summary.json").read_text())
    (work / "summary.json").write_text(json.dumps({**summary, "pairs": times * summary["pairs"], "repeated": times}))
    work.rename(out)
    return out


def measure(data: Path, out: Path, minutes: float, workers: int, recipe_args: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "crystalclip.cli", "train", "--data", str(data), "--out", str(out), "--json",
               "--set", f"train.max_minutes={minutes}", "--set", "train.epochs=1000", "--set", "train.epoch_rows=20000",
               "--set", f"train.workers={workers}", *recipe_args]
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = sample(process.pid, every=1.0)
    output = process.communicate()[0]
    if process.returncode != 0:
        raise SystemExit(f"training on {data} failed (exit {process.returncode})")
    summary = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    return {"rows": json.loads((data / "summary.json").read_text())["pairs"], "train_rows": summary["train_rows"],
            "peak_GiB": peak, "wall_s": round(time.time() - started, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a dataset directory whose caches are complete for the recipe")
    ap.add_argument("--repeat", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/crystalclip-train-memory"))
    ap.add_argument("--set", action="append", default=[], help="recipe overrides, as for `crystalclip train`")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    recipe = [x for s in args.set for x in ("--set", s)]
    big = repeated(args.data.resolve(), args.work / f"x{args.repeat}", args.repeat)
    runs = [measure(d, args.work / f"run-{d.name}", args.minutes, args.workers, recipe) for d in (args.data, big)]
    result = {"runs": runs, "anon_ratio": round(runs[1]["peak_GiB"]["anon"] / runs[0]["peak_GiB"]["anon"], 2),
              "rows_ratio": round(runs[1]["rows"] / runs[0]["rows"], 2)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
