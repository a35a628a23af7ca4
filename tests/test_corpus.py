"""The packaged corpus: its vectors belong to the packaged default model, it opens without embedding
anything, and the builder that regenerates it is resumable and faithful to the stored arrays."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from crystalclip.embedded import corpus
from crystalclip.index import INFO_FILE
from crystalclip.structures.arrays import from_arrays, to_arrays

from .conftest import SHARED, amcsd_cifs

torch.set_num_threads(1)
RE_EMBEDDED = 256


def test_corpus_holds_every_source_with_measured_quantization(shipped):
    info = json.loads((corpus.corpus_dir() / INFO_FILE).read_text())
    assert shipped.count == info["count"] >= 170_000
    assert set(info["corpus"]["by_source"]) == {"mp", "amcsd", "core-mof", "mp40"}
    assert info["corpus"]["by_source"]["mp"] >= 150_000
    assert info["kind"] == "fp16" and info["ann"]["recall_at_10"] >= 0.99
    assert info["ann"]["recall_queries"] >= 500 and "texts of the corpus's structures" in info["ann"]["query_kind"]
    assert info["model"]["path"] == "default"  # no path of the machine that built it


def test_stored_vectors_are_the_default_models_embeddings(shipped, default_model):
    """Re-embed structures spread over every source from the stored arrays: cosine >= 0.999 to the
    stored (float16) vectors, so the corpus is never stale against the shipped model."""
    structures = corpus.Structures()
    rng = np.random.default_rng(1)
    picked = []
    for source in ("mp", "amcsd", "core-mof", "mp40"):
        rows = np.flatnonzero(shipped.meta["source"].to_numpy() == source)
        picked += list(rng.choice(rows, size=min(RE_EMBEDDED // 4, len(rows)), replace=False))
    crystals = [structures.crystal(structures.record(int(r))) for r in picked]
    assert [c.id for c in crystals] == list(shipped.meta["id"].iloc[picked])
    fresh = default_model.encode_crystals(crystals)
    stored = shipped.faiss.reconstruct_batch(np.array(picked, dtype=np.int64))
    cosine = np.sum(fresh * stored, axis=1) / np.linalg.norm(stored, axis=1)
    # the vectors are the model's embeddings of these very arrays: a stale corpus fails every row
    assert len(picked) >= 200 and cosine.min() >= 0.999, sorted(zip(cosine.round(4), picked))[:5]


def test_a_search_needs_no_embedding(shipped, default_model, monkeypatch):
    from crystalclip.embedded import ensure_index

    monkeypatch.setattr(default_model, "encode_crystals", lambda *a, **k: pytest.fail("embedded a structure"))
    index = ensure_index(default_model)
    results = index.search("a layered transition-metal dichalcogenide", k=10,
                           crystal_system="hexagonal", source="mp")
    assert len(results) == 10 and {r["source"] for r in results} == {"mp"}
    assert all(r["crystal_system"] == "hexagonal" and r["path"] is None for r in results)


def test_details_records_link_out(shipped):
    structures = corpus.Structures()
    mp = structures.record(structures.row("mp-149"))  # silicon
    assert mp["link"] == "https://next-gen.materialsproject.org/materials/mp-149" and mp["texts"]
    crystal = structures.crystal(mp)
    assert crystal.reduced_formula() == "Si"
    mof = int(np.flatnonzero(shipped.meta["source"].to_numpy() == "core-mof")[0])
    record = structures.record(mof)
    assert record["reference"].startswith("CoRE MOF 2019") and record["link"].startswith("https://")


def test_arrays_round_trip_ordered_and_disordered():
    from crystalclip.structures import StructureError, parse_cif

    crystals = []
    for _, cif in amcsd_cifs(step=20):
        try:
            crystals += parse_cif(cif)
        except StructureError:
            continue
    disordered = [c for c in crystals if not c.is_ordered][:20]
    assert disordered
    for crystal in crystals[:40] + disordered:
        back = from_arrays(crystal.id, *(to_arrays(crystal)[k] for k in corpus.ARRAY_COLUMNS))
        assert np.allclose(back.lattice, crystal.lattice, atol=1e-4)
        step = np.abs(((back.frac_coords - crystal.frac_coords) + 0.5) % 1.0 - 0.5)
        assert step.max() <= 1 / 65536
        assert back.species == crystal.species  # exact: formulas of fractional occupancies read the same
        assert back.reduced_formula() == crystal.reduced_formula()


def test_builder_resumes_and_matches_an_uninterrupted_build(tmp_path, default_model, monkeypatch):
    from crystalclip.data.build import build_dataset

    cifs = tmp_path / "cifs"
    cifs.mkdir()
    table = pd.read_parquet(SHARED / "mp-cifs" / "mp_cifs_00.parquet", columns=["material_id", "cif"]).head(60)
    table.to_parquet(cifs / "part.parquet", index=False)
    build_dataset([cifs], tmp_path / "data")
    monkeypatch.setattr(corpus, "PART_ROWS", 16)
    whole = corpus.build_corpus(tmp_path / "data", tmp_path / "whole", default_model)

    calls = {"n": 0}
    real = corpus._embed_part

    def dies_on_the_third(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(corpus, "_embed_part", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        corpus.build_corpus(tmp_path / "data", tmp_path / "resumed", default_model)
    monkeypatch.setattr(corpus, "_embed_part", real)
    parts = sorted((tmp_path / ".resumed.building").glob("part-*.parquet"))
    assert len(parts) == 2 and not (tmp_path / "resumed").exists()
    resumed = corpus.build_corpus(tmp_path / "data", tmp_path / "resumed", default_model)
    assert resumed["structures"] == whole["structures"] == 60
    a, b = corpus.open_corpus(default_model, tmp_path / "whole"), corpus.open_corpus(default_model, tmp_path / "resumed")
    assert np.array_equal(a.faiss.reconstruct_n(0, 60), b.faiss.reconstruct_n(0, 60))
    assert a.meta.equals(b.meta) and not (tmp_path / ".resumed.building").exists()

    # a corpus re-embedded from its own stored arrays (after a model change) gets the same vectors,
    # and keeps its structures, metadata and texts byte for byte
    shards = {p.name: p.read_bytes() for p in (tmp_path / "whole").glob("structures-*.parquet")}
    again = corpus.build_corpus(tmp_path / "whole", tmp_path / "whole", default_model)
    c = corpus.open_corpus(default_model, tmp_path / "whole")
    assert again["structures"] == 60 and again["failed"] == whole["failed"]
    assert np.array_equal(c.faiss.reconstruct_n(0, 60), a.faiss.reconstruct_n(0, 60)) and c.meta.equals(a.meta)
    assert shards and {p.name: p.read_bytes() for p in (tmp_path / "whole").glob("structures-*.parquet")} == shards


def test_cli_search_over_the_corpus():
    out = subprocess.run([sys.executable, "-m", "crystalclip.cli", "search", "cubic perovskite oxide", "-k", "3",
                          "--filter", "source=amcsd", "--json"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["index"] == "corpus" and body["pool_size"] >= 170_000 and body["model"] == "default"
    assert len(body["results"]) == 3 and all(r["source"] == "amcsd" for r in body["results"])
