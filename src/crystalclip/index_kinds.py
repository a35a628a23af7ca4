"""The faiss structures an `Index` can hold, by kind, and what each costs.

    flat    exact inner product (IndexFlatIP)                    4·D bytes a vector
    hnsw    HNSW graph over float32 vectors (fast, approximate)  4·D + ~2·M·4 bytes a vector
    fp16    half-precision floats, scanned exactly                2·D bytes a vector (the shipped corpus)
    sq8     8-bit scalar quantizer, scanned exactly               D bytes a vector
    ivfpq   inverted lists + product quantizer, `nprobe` lists    PQ_M bytes + 8 (id) a vector: 10M+ vectors

Compressed kinds are made from an exact index (`Index.compressed`): they need training vectors, and
their recall@10 against exact search is measured on real queries when given, else on indexed vectors.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import BadInput

KINDS = ("flat", "hnsw", "fp16", "sq8", "ivfpq")
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128
PQ_M = 64  # bytes of code a vector (D / PQ_M dimensions per sub-quantizer)
IVF_TRAIN_PER_LIST = 64  # training vectors per inverted list (faiss warns below 39)
IVFPQ_MIN_VECTORS = 10_000  # the product quantizer's 256 centroids each need training points
NPROBE = 64


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise BadInput(f"unknown index kind {kind!r} (one of {', '.join(KINDS)})")
    return kind


def empty_exact(dim: int, kind: str):
    """An empty flat or HNSW index (the kinds that need no training)."""
    import faiss

    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index
    return faiss.IndexFlatIP(dim)


def ivf_lists(count: int) -> int:
    """~4·sqrt(N) inverted lists, with enough training vectors for each."""
    return max(1, min(int(4 * math.sqrt(count)), count // IVF_TRAIN_PER_LIST, 65536))


def trained(vectors: np.ndarray, kind: str, nlist: int | None = None, seed: int = 0):
    """An empty `kind` index trained on (a sample of) `vectors`, with its settings for index.json."""
    import faiss

    dim = vectors.shape[1]
    if kind in ("fp16", "sq8"):
        quantizer = faiss.ScalarQuantizer.QT_fp16 if kind == "fp16" else faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexScalarQuantizer(dim, quantizer, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        return index, {"bytes_per_vector": dim * (2 if kind == "fp16" else 1)}
    if kind != "ivfpq":
        raise BadInput(f"an index of kind {kind!r} needs no training")
    if len(vectors) < IVFPQ_MIN_VECTORS:
        raise BadInput(f"ivfpq is for large collections (at least {IVFPQ_MIN_VECTORS:,} vectors, not "
                       f"{len(vectors):,}): use flat or sq8")
    if dim % PQ_M:
        raise BadInput(f"ivfpq needs a dimension divisible by {PQ_M}, not {dim}")
    nlist = nlist or ivf_lists(len(vectors))
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{PQ_M}", faiss.METRIC_INNER_PRODUCT)
    # polysemous training (simulated annealing of the codes for Hamming-distance filtering, which
    # search never uses) took ~66 s of a 109 s training on 24,000 corpus vectors here
    faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
    sample = min(len(vectors), max(nlist * IVF_TRAIN_PER_LIST, 256 * IVF_TRAIN_PER_LIST))
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size=sample, replace=False))
    index.train(np.ascontiguousarray(vectors[rows]))
    configure(index, {"kind": "ivfpq", "ann": {"nprobe": NPROBE}})
    return index, {"bytes_per_vector": PQ_M + 8, "nlist": nlist, "pq_m": PQ_M, "nprobe": NPROBE,
                   "trained_on": sample}


def configure(index, info: dict):
    """Search-time settings stored in index.json, applied after loading or training."""
    import faiss

    ann = info.get("ann") or {}
    if info.get("kind") == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = ann.get("ef_search", HNSW_EF_SEARCH)
    elif info.get("kind") == "ivfpq":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = ann.get("nprobe", NPROBE)
        ivf.make_direct_map()  # reconstruct(): filtered search and "more like this" read stored vectors
    return index


def without_direct_map(index):
    """An IVF index without its id -> list map (faiss merges IVF lists only so; `configure` makes it again)."""
    import faiss

    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.set_direct_map_type(faiss.DirectMap.NoMap)
    return index


def recall_at(reference, candidate, queries: np.ndarray, k: int = 10) -> float:
    """Mean overlap of the top-k ids of `candidate` with those of `reference` (exact), per query."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, reference.ntotal)
    _, exact = reference.search(q, k)
    _, approx = candidate.search(q, k)
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)]))
