"""Texts/s of TextTower.encode vs sentence-transformers on real MP-40 captions, and cache-hit speed.

    python benchmarks/encode_text.py [--n 2000] [--batch-size 64] [--threads 2] [--json]
"""
from __future__ import annotations

import argparse
import ast
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

CAPTIONS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mp40" / "captions_1000.csv"


def load_captions(n: int) -> list[str]:
    df = pd.read_csv(CAPTIONS, usecols=["prompt"])
    caps = [c for p in df["prompt"] for c in ast.literal_eval(p)]
    return caps[:n]


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="number of captions (max 5000)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from crystalclip.data.text_cache import cached_text_rows
    from crystalclip.models.text import default_text_model_path, get_text_tower

    texts = load_captions(args.n)
    t = time.perf_counter()
    tower = get_text_tower("minilm")
    load_s = time.perf_counter() - t

    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(default_text_model_path()), device="cpu")
    st.max_seq_length = tower.max_length

    tower.encode(texts[:64])  # warm-up both
    st.encode(texts[:64])
    ours_s = best_of(lambda: tower.encode(texts, batch_size=args.batch_size), args.repeat)
    st_s = best_of(lambda: st.encode(texts, batch_size=args.batch_size), args.repeat)

    ours = torch.nn.functional.normalize(tower.encode(texts[:256]), dim=-1)
    ref = torch.as_tensor(st.encode(texts[:256]))
    max_diff = (ours - ref).abs().max().item()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        cached_text_rows(Path(tmp), texts, tower, batch_size=args.batch_size)
        miss_s = time.perf_counter() - t
        hit_s = best_of(lambda: cached_text_rows(Path(tmp), texts, tower)[np.arange(len(texts))], 3)

    res = {
        "n_texts": len(texts), "batch_size": args.batch_size, "threads": args.threads,
        "max_length": tower.max_length, "tower_load_s": round(load_s, 2),
        "ours_texts_per_s": round(len(texts) / ours_s, 1),
        "sentence_transformers_texts_per_s": round(len(texts) / st_s, 1),
        "ratio_ours_over_st": round(st_s / ours_s, 3),
        "max_abs_diff_normalised": max_diff,
        "cache_miss_texts_per_s": round(len(texts) / miss_s, 1),
        "cache_hit_texts_per_s": round(len(texts) / hit_s, 1),
        "cache_hit_s": round(hit_s, 4),
    }
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:36s} {v}")


if __name__ == "__main__":
    main()
