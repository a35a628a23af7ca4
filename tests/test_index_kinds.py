"""Compressed index kinds (sq8, ivfpq) and shards: recall against exact search on real vectors, save
and load, filters, merging shards and searching them together, and the CLI around them."""
import json
import subprocess
import sys

import numpy as np
import pytest

from crystalclip.errors import BadInput
from crystalclip.index import Index
from crystalclip.index_shards import merge, search_together

from .test_server import build_index

N = 24_000


@pytest.fixture(scope="module")
def model(default_model):
    return default_model


@pytest.fixture(scope="module")
def real(model, shipped):
    """N real structure embeddings of the corpus (decoded) with their metadata, and 20 real text queries."""
    rows = np.sort(np.random.default_rng(0).choice(shipped.count, size=N, replace=False))
    vectors = shipped.faiss.reconstruct_batch(rows.astype(np.int64))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    meta = shipped.meta.iloc[rows].to_dict("records")
    queries = model.encode_texts([f"a {w} crystal structure" for w in
                                  ("layered", "cubic", "porous", "magnetic", "hexagonal", "oxide", "sulfide",
                                   "metallic", "superconducting", "perovskite")] * 2)
    return vectors, meta, queries


def flat_of(model, vectors, meta) -> Index:
    index = Index.empty(model)
    index.add_vectors(vectors, meta)
    return index


def test_sq8_and_ivfpq_recall_and_bytes(model, real, tmp_path):
    vectors, meta, queries = real
    flat = flat_of(model, vectors, meta)
    sq8 = flat.compressed("sq8", queries, "texts")
    assert sq8.kind == "sq8" and sq8.info["ann"]["bytes_per_vector"] == 256 and sq8.recall_at_10 >= 0.95
    ivfpq = flat.compressed("ivfpq", queries, "texts")
    assert ivfpq.info["ann"]["bytes_per_vector"] == 72 and ivfpq.info["ann"]["nlist"] >= 100
    assert ivfpq.recall_at_10 >= 0.6, ivfpq.info["ann"]
    ivfpq.save(tmp_path / "ivfpq")
    back = Index.load(tmp_path / "ivfpq")
    assert back.kind == "ivfpq" and back.search_vectors(queries[:3], k=10) == ivfpq.search_vectors(queries[:3], k=10)
    filtered = back.search(queries[0], k=5, crystal_system="cubic")  # reads stored vectors: the direct map
    assert len(filtered) == 5 and all(r["crystal_system"] == "cubic" for r in filtered)
    with pytest.raises(BadInput, match="large collections"):
        flat_of(model, vectors[:500], meta[:500]).compressed("ivfpq")


def test_shards_merge_and_search_together_like_one_index(model, real):
    vectors, meta, queries = real
    whole = flat_of(model, vectors, meta)
    half = N // 2
    shards = [flat_of(model, vectors[:half], meta[:half]), flat_of(model, vectors[half:], meta[half:])]
    merged = merge(shards)
    assert merged.count == N and merged.meta["id"].tolist() == whole.meta["id"].tolist()
    assert [s.count for s in shards] == [half, N - half]  # the shards are left as they were
    for q in queries[:5]:
        expected = [r["id"] for r in whole.search(q, k=10)]
        assert [r["id"] for r in merged.search(q, k=10)] == expected
        assert [r["id"] for r in search_together(shards, q, k=10)] == expected
    # compressed shards merge when trained together, and refuse when trained apart
    trained = whole.compressed("ivfpq")
    import faiss

    parts = []
    for part in (slice(0, half), slice(half, N)):
        shard = Index(faiss.clone_index(trained.faiss), trained.meta.iloc[part], dict(trained.info))
        shard.faiss.reset()
        shard.faiss.add(vectors[part])
        parts.append(shard)
    together = merge(parts)
    assert together.count == N
    for q in queries[:5]:  # the merged shards answer as the index trained and filled at once
        assert {r["id"] for r in together.search(q, k=10)} == {r["id"] for r in trained.search(q, k=10)}
    apart = [shards[0].compressed("ivfpq"), shards[1].compressed("ivfpq")]
    with pytest.raises(BadInput, match="search them together"):
        merge(apart)
    assert len(search_together(apart, queries[0], k=10)) == 10


def _cli(*args):
    out = subprocess.run([sys.executable, "-m", "crystalclip.cli", *map(str, args)], capture_output=True, text=True,
                         timeout=600)
    return out


def test_cli_kind_shards_and_merge(tmp_path):
    index_dir, model = build_index(tmp_path, n=12)
    cifs, model_dir = tmp_path / "cifs", tmp_path / "model"
    built = _cli("index", cifs, "--model", model_dir, "--out", tmp_path / "sq8", "--kind", "sq8", "--json")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["kind"] == "sq8" and summary["count"] == 12 and summary["recall_at_10"] >= 0.9
    assert not (tmp_path / ".sq8.flat").exists()
    assert "ivfpq is for large collections" in _cli("index", cifs, "--model", model_dir, "--out",
                                                    tmp_path / "pq", "--kind", "ivfpq").stderr
    merged = _cli("index-merge", index_dir, index_dir, "--out", tmp_path / "merged")
    assert merged.returncode == 0 and Index.load(tmp_path / "merged").count == 24
    together = _cli("search", "a cubic oxide", "--index", index_dir, "--index", tmp_path / "merged", "-k", "5", "--json")
    assert together.returncode == 0, together.stderr
    body = json.loads(together.stdout)
    assert body["pool_size"] == 36 and [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
