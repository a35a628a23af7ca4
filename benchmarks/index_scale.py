"""Indexes for 1M-10M+ vectors: bytes per vector, build time, recall@10 against exact search on real
text queries, and the latency of a text query (encoding included), per index kind and size.

Vectors are shaped like real ones: each is a real structure embedding of the packaged corpus (the
default model's, ~180k) plus Gaussian noise of norm --noise, renormalised (uniform random vectors
would be a worst case no real collection looks like). Queries are ~200 real materials phrases
embedded by the default model. Vectors are made and added 1M at a time, and the exact top-10 of every
query is kept as they stream by, so a 10M run holds no float32 copy of the collection.

Kinds: flat (exact; at the smallest size only, 4·D bytes), sq8 (crystalclip's `compressed("sq8")`,
D bytes, scanned exactly), ivfpq (`compressed("ivfpq")`'s construction: IVF + PQ64, 72 bytes with
its id), ivfpq+refine (ivfpq's top 4·K re-ranked from the sq8 copy's vectors: 72 + D bytes; what
faiss's IndexRefine does, built from the two indexes above, so it costs no extra build time).

    python benchmarks/index_scale.py [--sizes 1000000,10000000] [--queries 200] [--noise 0.3] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

from search import query_phrases

CHUNK = 1_000_000
K = 10


def vectors_like(real: np.ndarray, n: int, noise: float, rng) -> np.ndarray:
    base = real[rng.integers(len(real), size=n)]
    out = base + rng.standard_normal(base.shape, dtype=np.float32) * (noise / np.sqrt(real.shape[1]))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out, dtype=np.float32)


def merge_top(best_s, best_i, scores, offset):
    """Streaming exact top-K: merge this chunk's scores (Q, n) into the running (Q, K) best."""
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    s = np.concatenate([best_s, np.take_along_axis(scores, top, axis=1)], axis=1)
    i = np.concatenate([best_i, top + offset], axis=1)
    order = np.argsort(-s, axis=1)[:, :K]
    return np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)


def build(kinds, n, real, noise, seed, queries, nlist):
    """Each kind as crystalclip makes it (`index_kinds`), trained on the first chunk, then filled."""
    from crystalclip.index_kinds import empty_exact, trained

    rng = np.random.default_rng(seed)
    first = vectors_like(real, min(CHUNK, n), noise, rng)
    indexes, seconds = {}, {}
    for kind in kinds:
        t0 = time.perf_counter()
        indexes[kind] = empty_exact(real.shape[1], "flat") if kind == "flat" else trained(first, kind, nlist=nlist)[0]
        seconds[kind] = time.perf_counter() - t0
    best_s = np.full((len(queries), K), -np.inf, np.float32)
    best_i = np.zeros((len(queries), K), np.int64)
    for start in range(0, n, CHUNK):
        chunk = first if start == 0 else vectors_like(real, min(CHUNK, n - start), noise, rng)
        best_s, best_i = merge_top(best_s, best_i, queries @ chunk.T, start)
        for kind, index in indexes.items():
            t0 = time.perf_counter()
            index.add(chunk)
            seconds[kind] += time.perf_counter() - t0
    return indexes, seconds, best_i


def refined(ivfpq, sq8):
    """IndexRefine by hand: ivfpq's top 4·K candidates scored again on sq8's decoded vectors."""
    def search(q, k):
        _, candidates = ivfpq.search(q, 4 * k)
        out = np.zeros((len(q), k), np.int64)
        for row, (query, ids) in enumerate(zip(q, candidates)):
            ids = ids[ids >= 0]
            scores = sq8.reconstruct_batch(ids) @ query
            out[row, : min(k, len(ids))] = ids[np.argsort(-scores)[:k]]
        return None, out
    return search


def percentiles(ms: list[float]) -> dict:
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p99": round(float(np.percentile(ms, 99)), 2)}


def measure(search, size_bytes, truth, queries, phrases, model, n):
    _, found = search(queries, K)
    recall = float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))
    encode_ms, total_ms = [], []
    for phrase in phrases:
        t0 = time.perf_counter()
        q = model.encode_texts([phrase])
        t1 = time.perf_counter()
        search(q, K)
        t2 = time.perf_counter()
        encode_ms.append((t1 - t0) * 1e3)
        total_ms.append((t2 - t0) * 1e3)
    return {"recall_at_10": round(recall, 4), "bytes_per_vector": round(size_bytes / n, 1),
            "latency_ms": percentiles(total_ms), "text_encoding_ms": percentiles(encode_ms)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000", help="comma-separated numbers of vectors")
    ap.add_argument("--kinds", default="flat,sq8,ivfpq", help="ivfpq+refine is measured when sq8 and ivfpq are built")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.3, help="norm of the Gaussian noise added to each real vector")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import faiss
    import torch

    import crystalclip
    from crystalclip.embedded import corpus
    from crystalclip.index_kinds import NPROBE

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    model = crystalclip.load("default")
    shipped = corpus.open_corpus(model)
    real = shipped.faiss.reconstruct_n(0, shipped.count)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    phrases = query_phrases(args.queries)
    queries = np.ascontiguousarray(model.encode_texts(phrases), dtype=np.float32)
    sizes = [int(s) for s in args.sizes.split(",")]
    report = {"real_vectors": len(real), "dim": int(real.shape[1]), "noise": args.noise, "queries": len(phrases),
              "threads": args.threads, "k": K, "sizes": {}}
    for n in sizes:
        kinds = [k for k in args.kinds.split(",") if k != "flat" or n == min(sizes)]
        nlist = 1024 if n <= 2_000_000 else 4096
        say(f"{n:,} vectors: building {', '.join(kinds)} (nlist {nlist}) ...")
        indexes, seconds, truth = build(kinds, n, real, args.noise, args.seed, queries, nlist)
        sizes_b = {kind: (index.ntotal * index.d * 4 if kind == "flat" else faiss.serialize_index(index).nbytes)
                   for kind, index in indexes.items()}
        searches = {kind: index.search for kind, index in indexes.items()}
        if {"sq8", "ivfpq"} <= set(indexes):
            searches["ivfpq+refine"] = refined(indexes["ivfpq"], indexes["sq8"])
            sizes_b["ivfpq+refine"], seconds["ivfpq+refine"] = sizes_b["ivfpq"] + sizes_b["sq8"], seconds["ivfpq"] + seconds["sq8"]
        results = {}
        for kind, search in searches.items():
            results[kind] = {"build_s": round(seconds[kind], 1),
                             **measure(search, sizes_b[kind], truth, queries, phrases, model, n)}
            if kind.startswith("ivfpq"):
                results[kind].update(nlist=nlist, nprobe=NPROBE)
            say(f"  {kind}: {json.dumps(results[kind])}")
        report["sizes"][str(n)] = results
        del indexes
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
