"""Search speed: crystalclip's Index against raw faiss, the ANN index's latency and recall, build rate.

The search pool is N synthetic unit vectors of the model's dimension (seeded, float32, uniform on
the sphere) plus, unless --no-embedded, the real structure embeddings of the packaged corpus
(`crystalclip.embedded.corpus`, the default model's, stored 8-bit). Queries
are real: ~200 materials phrases embedded with the default model. Everything is measured in this
run, on the same vectors and queries:

(a) exact: the same Q text-query vectors searched for the top 10 through crystalclip's Index
    (`Index.search_vectors`, one call with the (Q, D) batch) vs raw faiss `IndexFlatIP.search` on the whole (Q, D)
    batch, on the very `IndexFlatIP` the Index holds. exact_vs_faiss_ratio = ours / raw
    throughput (target >= 0.9). Where the difference goes is reported: raw faiss one query per
    call (the cost of not batching) and the Index's per-call Python work on top of that.
(b) ANN: an HNSW index made as crystalclip makes it (`Index.empty(model, ann=True)`: M,
    efConstruction, efSearch from crystalclip.index) over the same pool; its build time; the
    latency of a single text query -> top 10 through `Index.search(text, k=10, model=model)`,
    text encoding included (p50/p95; target p50 <= 30 ms), split into encoding and graph search;
    recall@10 of those results against exact search of the same query vectors (target >= 0.95),
    and crystalclip's own recall figure (indexed vectors used as queries, `measure_recall`).
(c) build: structures/s from CIF files to an indexed `Index` through `Index.build` (parse, graph,
    embed, metadata) on --build-cifs CIFs written from the mp40 captions CSV into a temp dir.

    python benchmarks/search.py [--vectors 1000000] [--queries 200] [--parts exact,ann,build]
                                [--build-cifs 500] [--threads 2] [--no-embedded] [--json]
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / ".." / "shared" / "data" / "mp40" / "captions_1000.csv"
K = 10
PARTS = ("exact", "ann", "build")

# ~200 queries a materials scientist might type: every pairing of a property with a material class,
# a seeded sample of them, plus some written out in full.
PROPERTIES = [
    "superconducting", "ferromagnetic", "antiferromagnetic", "wide band gap", "narrow band gap",
    "metallic", "insulating", "layered", "porous", "thermoelectric", "ferroelectric", "piezoelectric",
    "high-pressure", "thermodynamically stable", "metastable", "transparent conducting",
    "low-density", "hard", "cubic", "hexagonal",
]
CLASSES = [
    "oxide", "sulfide", "selenide", "nitride", "carbide", "fluoride", "chloride", "phosphate",
    "silicate", "perovskite", "spinel", "intermetallic", "Heusler alloy", "metal-organic framework",
    "zeolite", "garnet", "borate", "hydride", "chalcogenide", "mineral",
]
PHRASES = [
    "layered sulfide superconductor", "cuprate superconductor with CuO2 planes",
    "lithium-ion battery cathode material", "solid electrolyte with fast lithium conduction",
    "metal-organic framework with large pores for CO2 capture", "zinc-based MOF with open metal sites",
    "copper paddlewheel framework", "zeolitic imidazolate framework", "hexagonal close-packed metal",
    "rock salt structure", "fluorite-type oxide", "wurtzite semiconductor", "rutile TiO2",
    "a carbonate mineral from a hydrothermal deposit", "garnet from a metamorphic rock",
    "orthorhombic perovskite with tilted octahedra", "magnetic rare-earth intermetallic",
    "topological insulator bismuth selenide", "two-dimensional van der Waals material",
    "high-entropy alloy", "photocatalyst for water splitting", "ionic conductor for fuel cells",
    "uranium-bearing mineral", "clay mineral with a sheet structure", "cubic Laves phase",
]


def query_phrases(n: int, seed: int = 0) -> list[str]:
    pairs = [f"{p} {c}" for p, c in itertools.product(PROPERTIES, CLASSES)]
    rng = np.random.default_rng(seed)
    picked = [pairs[i] for i in rng.permutation(len(pairs))]
    return (PHRASES + picked)[:n]


def unit_vectors(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """n float32 rows uniform on the unit sphere (generated in chunks: no float64 copy of the lot)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + len(block)] = block
    return out


def index_over(model, vectors: np.ndarray, ids: list[str], ann: bool):
    """A crystalclip Index, made by Index.empty as crystalclip makes it, holding `vectors`.

    Index.add only takes structures, so the vectors go into its faiss index and its metadata table
    directly (one row per vector, ids only: the search path reads them for every result)."""
    import pandas as pd

    from crystalclip.index import META_COLUMNS, Index

    index = Index.empty(model, ann=ann)
    t0 = time.perf_counter()
    index.faiss.add(vectors)
    add_s = time.perf_counter() - t0
    n = len(ids)
    index.meta = pd.DataFrame({
        "id": ids, "path": [None] * n, "formula": [None] * n, "elements": [[]] * n,
        "spacegroup_number": pd.array([pd.NA] * n, dtype="Int64"), "crystal_system": [None] * n,
        "title": [None] * n,
    }, columns=META_COLUMNS)
    index.info["count"] = index.count
    return index, add_s


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "mean": round(float(a.mean()), 3)}


def recall_at(found: list[set], truth: np.ndarray) -> float:
    return float(np.mean([len(f & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


# ------------------------------------------------------------------------------------------------


def part_exact(model, vectors, ids, queries_vec, repeat: int) -> dict:
    index, add_s = index_over(model, vectors, ids, ann=False)
    flat = index.faiss  # the IndexFlatIP inside the Index: raw faiss on the very same vectors
    q = np.ascontiguousarray(queries_vec, dtype=np.float32)
    nq = len(q)
    flat.search(q[:4], K)  # warm-up

    def best(fn):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    raw_s, (raw_scores, raw_ids) = best(lambda: flat.search(q, K))

    # ours: the batched path, Index.search_vectors (one faiss call, then the result rows)
    path = "batched (Index.search_vectors with a (Q, D) array)"
    ours_s, ours_out = best(lambda: index.search_vectors(q, k=K))
    row_of = {v: i for i, v in enumerate(ids)} if len(ids) <= 5_000_000 else None
    same = None
    if row_of is not None:
        ours_ids = np.array([[row_of[r["id"]] for r in res] for res in ours_out])
        same = float(np.mean([set(a) == set(b) for a, b in zip(ours_ids, raw_ids)]))

    # where the time goes: raw faiss one query per call (the cost of not batching), and the Index's
    # own work per call: each query through raw faiss and through Index.search back to back, the
    # median of the per-query differences (two separately timed loops on a busy machine differ by
    # more than the Index's work)
    single_s, _ = best(lambda: [flat.search(row[None, :], K) for row in q])
    diffs = []
    for row in q:
        t0 = time.perf_counter()
        flat.search(row[None, :], K)
        t1 = time.perf_counter()
        index.search(row, k=K)
        t2 = time.perf_counter()
        diffs.append((t2 - t1) - (t1 - t0))
    per_call_overhead_ms = 1e3 * float(np.median(diffs))
    # the Index's Python work per call, measured without faiss: building the result rows
    t0 = time.perf_counter()
    for i in raw_ids[: min(nq, 50)]:
        [index._result(rank, int(j), 0.0) for rank, j in enumerate(i, 1)]
    result_ms = 1e3 * (time.perf_counter() - t0) / min(nq, 50)
    t0 = time.perf_counter()
    for _ in range(200):
        index.check_model(model)
    check_model_ms = 1e3 * (time.perf_counter() - t0) / 200

    return {
        "queries": nq,
        "ours_path": path,
        "raw_faiss_qps": round(nq / raw_s, 1),
        "ours_qps": round(nq / ours_s, 1),
        "exact_vs_faiss_ratio": round(raw_s / ours_s, 4),
        "raw_faiss_single_query_qps": round(nq / single_s, 1),
        "single_vs_batch_ratio": round(raw_s / single_s, 4),
        "index_overhead_ms_per_call": None if per_call_overhead_ms is None else round(per_call_overhead_ms, 3),
        "result_rows_ms_per_call": round(result_ms, 3),
        "check_model_ms_per_call": round(check_model_ms, 3),
        "same_top10_as_raw": same,
        "flat_add_s": round(add_s, 2),
    }


def part_ann(model, vectors, ids, phrases, queries_vec, threads: int) -> dict:
    import faiss

    from crystalclip.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

    index, build_s = index_over(model, vectors, ids, ann=True)
    t0 = time.perf_counter()
    own_recall = index.measure_recall()  # what `crystalclip index --ann` prints
    own_recall_s = time.perf_counter() - t0
    exact = index._exact()  # the HNSW graph's flat storage: exact inner product, same vectors
    q = np.ascontiguousarray(queries_vec, dtype=np.float32)
    _, truth = exact.search(q, K)
    row_of = {v: i for i, v in enumerate(ids)}

    warm = ["warm-up query", "another warm-up", "oxide"]
    for text in warm:
        index.search(text, k=K, model=model)
    total_ms, found = [], []
    for text in phrases:
        t0 = time.perf_counter()
        results = index.search(text, k=K, model=model)
        total_ms.append(1e3 * (time.perf_counter() - t0))
        found.append({row_of[r["id"]] for r in results})
    # the same queries, stage by stage
    encode_ms, graph_ms = [], []
    params = faiss.SearchParametersHNSW()
    params.efSearch = max(K, HNSW_EF_SEARCH)
    for text in phrases:
        t0 = time.perf_counter()
        v = np.ascontiguousarray(model.encode_texts([text]), dtype=np.float32)
        t1 = time.perf_counter()
        index.faiss.search(v, K, params=params)
        t2 = time.perf_counter()
        encode_ms.append(1e3 * (t1 - t0))
        graph_ms.append(1e3 * (t2 - t1))
    stats = index.faiss.hnsw
    hnsw_bytes = index.count * index.info["dim"] * 4 + stats.neighbors.size() * 4 + stats.levels.size() * 4 \
        + stats.offsets.size() * 8
    total, enc, graph = percentiles(total_ms), percentiles(encode_ms), percentiles(graph_ms)
    return {
        "queries": len(phrases),
        "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH,
        "build_s": round(build_s, 2),
        "build_vectors_per_s": round(index.count / build_s, 1),
        "ann_p50_ms": total["p50"], "ann_p95_ms": total["p95"], "ann_mean_ms": total["mean"],
        "encode_p50_ms": enc["p50"], "encode_p95_ms": enc["p95"],
        "graph_search_p50_ms": graph["p50"], "graph_search_p95_ms": graph["p95"],
        "ann_recall_at_10": round(recall_at(found, truth), 4),
        "own_recall_at_10": None if own_recall is None else round(own_recall, 4),
        "own_recall_s": round(own_recall_s, 2),
        "hnsw_bytes": int(hnsw_bytes),
        "top10_real_fraction": None,  # filled in by main (needs the synthetic/real split)
        "_found": found,
    }


def part_build(model, csv_path: Path, n: int) -> dict:
    from crystalclip.index import Index

    csv.field_size_limit(sys.maxsize)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = [(row.get("material_id") or str(k), row["cif"]) for k, row in enumerate(csv.DictReader(handle))]
    rows = rows[:n]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifs"
        folder.mkdir()
        for name, cif in rows:
            (folder / f"{name}.cif").write_text(cif)
        warm = Index.build([folder / f"{rows[0][0]}.cif"], model)  # imports, model, element tables
        del warm
        t0 = time.perf_counter()
        index = Index.build(folder, model)
        build_s = time.perf_counter() - t0
        out_dir = Path(tmp) / "index"
        t0 = time.perf_counter()
        index.save(out_dir)
        save_s = time.perf_counter() - t0
        index_bytes = sum(p.stat().st_size for p in out_dir.iterdir())
    return {
        "cifs": len(rows),
        "indexed": index.count,
        "failed": len(index.failed),
        "build_s": round(build_s, 2),
        "build_structures_per_s": round(index.count / build_s, 1),
        "save_s": round(save_s, 3),
        "index_bytes": index_bytes,
    }


# ------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", type=int, default=1_000_000, help="synthetic vectors in the pool")
    ap.add_argument("--queries", type=int, default=200, help="text queries (at most %d)" %
                    (len(PHRASES) + len(PROPERTIES) * len(CLASSES)))
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    ap.add_argument("--no-embedded", action="store_true", help="synthetic vectors only (no real structures)")
    ap.add_argument("--build-cifs", type=int, default=500, help="CIFs for the build-rate part")
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="CSV with a 'cif' column (build part)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="faiss and torch threads")
    ap.add_argument("--repeat", type=int, default=2, help="exact part: best of this many timed runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        ap.error(f"unknown parts {sorted(unknown)}: choose from {', '.join(PARTS)}")

    warnings.simplefilter("ignore")
    import faiss
    import torch

    import crystalclip

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))

    model = crystalclip.load("default")
    dim = model.dim
    report: dict = {"dim": dim, "threads": args.threads, "parts": parts, "k": K}

    vectors = ids = None
    n_real = 0
    if "exact" in parts or "ann" in parts:
        t0 = time.perf_counter()
        pieces, ids = [], []
        if args.vectors:
            pieces.append(unit_vectors(args.vectors, dim, args.seed))
            ids += [f"synthetic-{i}" for i in range(args.vectors)]
        if not args.no_embedded:
            from crystalclip.embedded import corpus

            say("loading the packaged corpus's embeddings (8-bit, decoded) ...")
            shipped = corpus.open_corpus(model)
            real = shipped.faiss.reconstruct_n(0, shipped.count)
            real = np.ascontiguousarray(real / np.linalg.norm(real, axis=1, keepdims=True), dtype=np.float32)
            n_real = len(real)
            pieces.append(real)
            ids += [f"real-{i}:{v}" for i, v in enumerate(shipped.meta["id"].astype(str))]
        vectors = np.ascontiguousarray(np.concatenate(pieces) if len(pieces) > 1 else pieces[0])
        say(f"pool: {args.vectors:,} synthetic + {n_real:,} real = {len(vectors):,} vectors of dim {dim} "
            f"({vectors.nbytes / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s")
        phrases = query_phrases(args.queries)
        queries_vec = np.ascontiguousarray(model.encode_texts(phrases), dtype=np.float32)
        report.update(synthetic_vectors=args.vectors, real_vectors=n_real, pool_vectors=len(vectors),
                      pool_bytes=int(vectors.nbytes), queries=len(phrases))

    if "exact" in parts:
        say("(a) exact search: crystalclip Index vs raw faiss IndexFlatIP ...")
        report["exact"] = part_exact(model, vectors, ids, queries_vec, args.repeat)
        report["exact_vs_faiss_ratio"] = report["exact"]["exact_vs_faiss_ratio"]
    if "ann" in parts:
        say("(b) HNSW: build, text query latency, recall@10 ...")
        ann = part_ann(model, vectors, ids, phrases, queries_vec, args.threads)
        found = ann.pop("_found")
        if n_real:
            ann["top10_real_fraction"] = round(float(np.mean(
                [np.mean([i >= args.vectors for i in f]) for f in found if f])), 4)
        report["ann"] = ann
        report.update(ann_p50_ms=ann["ann_p50_ms"], ann_p95_ms=ann["ann_p95_ms"],
                      ann_recall_at_10=ann["ann_recall_at_10"], hnsw_build_s=ann["build_s"])
    del vectors
    if "build" in parts:
        say(f"(c) Index.build on {args.build_cifs} CIFs ...")
        report["build"] = part_build(model, args.csv.resolve(), args.build_cifs)
        report["build_structures_per_s"] = report["build"]["build_structures_per_s"]

    if args.json:
        print(json.dumps(report))
        return 0
    targets = []
    print(f"crystalclip search benchmark: default model (dim {dim}), {args.threads} thread(s), top-{K}")
    if "pool_vectors" in report:
        print(f"  pool       {report['synthetic_vectors']:,} synthetic unit vectors (seed {args.seed}) + "
              f"{report['real_vectors']:,} real structure embeddings = {report['pool_vectors']:,} "
              f"({report['pool_bytes'] / 1e9:.2f} GB); {report['queries']} text queries")
    if "exact" in report:
        e = report["exact"]
        print(f"  exact      raw faiss IndexFlatIP.search, {e['queries']} queries in one batch: "
              f"{e['raw_faiss_qps']:,.1f} queries/s")
        print(f"             crystalclip Index.search, {e['ours_path']}: {e['ours_qps']:,.1f} queries/s")
        print(f"             exact_vs_faiss_ratio {e['exact_vs_faiss_ratio']:.3f} (target >= 0.9); "
              f"same top-10 as raw: {e['same_top10_as_raw']}")
        print(f"             where it goes: raw faiss one query per call {e['raw_faiss_single_query_qps']:,.1f} "
              f"queries/s (batch/single {1 / e['single_vs_batch_ratio']:.2f}x); Index.search work per call on top of faiss "
              f"{e['index_overhead_ms_per_call']} ms, of which result rows {e['result_rows_ms_per_call']} ms"
              f" (check_model alone, for text/structure queries: {e['check_model_ms_per_call']} ms)")
        targets.append(("exact_vs_faiss_ratio >= 0.9", e["exact_vs_faiss_ratio"] >= 0.9))
    if "ann" in report:
        a = report["ann"]
        print(f"  HNSW       M={a['M']} efConstruction={a['ef_construction']} efSearch={a['ef_search']}: "
              f"built in {a['build_s']:.1f} s ({a['build_vectors_per_s']:,.0f} vectors/s), "
              f"{a['hnsw_bytes'] / 1e9:.2f} GB")
        print(f"             text query -> top {K} (encoding included): p50 {a['ann_p50_ms']:.2f} ms, "
              f"p95 {a['ann_p95_ms']:.2f} ms (target p50 <= 30 ms); encoding p50 {a['encode_p50_ms']:.2f} ms, "
              f"graph search p50 {a['graph_search_p50_ms']:.2f} ms")
        print(f"             recall@10 vs exact on the text queries {a['ann_recall_at_10']:.4f} (target >= 0.95); "
              f"crystalclip's own figure (indexed vectors as queries) {a['own_recall_at_10']}")
        if a["top10_real_fraction"] is not None:
            print(f"             real structures among the returned top-10: {100 * a['top10_real_fraction']:.1f}%")
        targets += [("ann_p50_ms <= 30", a["ann_p50_ms"] <= 30), ("ann_recall_at_10 >= 0.95", a["ann_recall_at_10"] >= 0.95)]
    if "build" in report:
        b = report["build"]
        print(f"  build      Index.build on {b['cifs']} CIF files: {b['indexed']} indexed, {b['failed']} failed in "
              f"{b['build_s']:.1f} s = {b['build_structures_per_s']:.1f} structures/s; saved in {b['save_s']} s, "
              f"{b['index_bytes'] / 1e6:.2f} MB")
    for name, ok in targets:
        print(f"  target     {name}: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
