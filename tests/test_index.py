"""The faiss index (build, add/resume, filters, save/load, model check) and the index / search / classify CLI.

Models are random inits of the default recipe (no training): the index only needs a fixed encoder."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import crystalclip
from crystalclip.index import Index
from crystalclip.structures import Crystal, iter_crystals

MP40 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mp40"
torch.set_num_threads(1)


def _random_model(directory: Path, seed: int):
    from crystalclip.models.clip import CrystalClip, ModelConfig
    from crystalclip.recipe import load_recipe

    torch.manual_seed(seed)
    CrystalClip(load_recipe("default").model).save(directory)
    return crystalclip.load(directory)


def _write_cifs(folder: Path, rows: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows.itertuples():
        (folder / f"{row.material_id}.cif").write_text(row.cif)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("index")
    table = pd.read_csv(MP40 / "captions_1000.csv")
    cifs = root / "cifs"
    _write_cifs(cifs, table.iloc[:40])
    (cifs / "broken.cif").write_text("data_broken\n_cell_length_a 3.0\n")
    (cifs / "empty.cif").write_text("")
    model = _random_model(root / "model", seed=0)
    index = Index.build(cifs, model)
    return {"root": root, "table": table, "cifs": cifs, "model": model, "index": index}


def test_build_records_broken_files_and_ranks(setup):
    index, model = setup["index"], setup["model"]
    assert index.count == 40 and len(index.meta) == 40 and index.kind == "flat"
    failed = dict(zip(index.failed["path"].map(lambda p: Path(p).name), index.failed["reason"]))
    assert set(failed) == {"broken.cif", "empty.cif"}
    assert failed["empty.cif"] == "empty file" and failed["broken.cif"]
    results = index.search("a cubic perovskite oxide", k=5, model=model)
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    from crystalclip.index_meta import RESULT_FIELDS

    assert list(results[0]) == RESULT_FIELDS
    row = index.meta.set_index("id").loc["mp-20744"]  # ZrInNi2, Fm-3m (declared P1 in the CIF: spglib finds it)
    assert row["formula"] == "ZrInNi2" and row["spacegroup_number"] == 225 and row["crystal_system"] == "cubic"
    assert list(row["elements"]) == ["In", "Ni", "Zr"]


def test_exact_top1_of_own_embedding_is_itself(setup):
    index, model = setup["index"], setup["model"]
    crystals = [c for c in iter_crystals(setup["cifs"]) if isinstance(c, Crystal)][:8]
    vectors = model.encode_crystals(crystals)
    for crystal, vector in zip(crystals, vectors):
        assert index.search(vector, k=1)[0]["id"] == crystal.id
    by_structure = index.search(crystals[0].to_pymatgen(), k=3, model=model)
    assert by_structure[0]["id"] == crystals[0].id and by_structure[0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_filters_are_exact(setup):
    index, model = setup["index"], setup["model"]
    vectors = index.faiss.reconstruct_n(0, index.count)
    query = model.encode_texts(["an oxide"])[0]

    def brute(mask, k):
        order = [i for i in np.argsort(-(vectors @ query), kind="stable") if mask[i]]
        return [index.meta["id"].iloc[i] for i in order[:k]]

    oxygen = index.meta["elements"].map(lambda e: "O" in e).to_numpy()
    results = index.search("an oxide", k=5, model=model, elements=["O"])
    assert results and all("O" in index.meta.set_index("id").loc[r["id"], "elements"] for r in results)
    assert [r["id"] for r in results] == brute(oxygen, 5)
    # a rare filter with a large k: over-fetching cannot fill it, the exact subset search does
    fm3m = (index.meta["spacegroup_number"] == 225).to_numpy()
    results = index.search("an oxide", k=30, model=model, spacegroup=225)
    assert len(results) == fm3m.sum() >= 2
    assert {r["spacegroup_number"] for r in results} == {225}
    assert [r["id"] for r in results] == brute(fm3m, 30)
    cubic = index.search("an oxide", k=40, model=model, crystal_system="cubic", elements="O")
    assert all(r["crystal_system"] == "cubic" for r in cubic)
    assert index.search("x", k=3, model=model, elements=["Og"]) == []
    with pytest.raises(ValueError, match="crystal system"):
        index.search("x", model=model, crystal_system="cubical")
    with pytest.raises(ValueError, match="element"):
        index.search("x", model=model, elements=["Xx"])


def test_save_load_round_trip(setup, tmp_path):
    index, model = setup["index"], setup["model"]
    index.save(tmp_path / "ix")
    assert {p.name for p in (tmp_path / "ix").iterdir()} == {"faiss.index", "meta.parquet", "index.json", "failed.csv"}
    info = json.loads((tmp_path / "ix" / "index.json").read_text())
    assert info["count"] == 40 and info["dim"] == model.dim and info["kind"] == "flat"
    assert info["model"]["path"] == str(Path(model.path).resolve()) and len(info["model"]["sha256"]) == 64
    again = Index.load(tmp_path / "ix")
    for kwargs in ({}, {"elements": ["O"]}, {"spacegroup": 62}):
        assert again.search("layered sulfide", k=7, model=model, **kwargs) == \
            index.search("layered sulfide", k=7, model=model, **kwargs)
    assert again.failed.to_dict("records") == index.failed.to_dict("records")
    with pytest.raises(FileNotFoundError, match="no index"):
        Index.load(tmp_path / "nothing")


def test_another_model_is_refused(setup):
    other = _random_model(setup["root"] / "model2", seed=1)
    with pytest.raises(ValueError, match="built with the model"):
        setup["index"].check_model(other)
    with pytest.raises(ValueError, match="built with the model"):
        setup["index"].search("oxide", model=other)
    setup["index"].save(setup["root"] / "saved")
    from crystalclip.api import open_index

    reloaded = open_index(setup["root"] / "saved")  # no model given: it loads the one it records
    assert reloaded.search("oxide", k=3) == setup["index"].search("oxide", k=3, model=setup["model"])
    with pytest.raises(ValueError, match="built with the model"):
        open_index(setup["root"] / "saved", other)
    with pytest.raises(ValueError, match="no model attached"):
        Index.load(setup["root"] / "saved").search("oxide")


def test_add_embeds_only_new_files_and_resumes_after_a_kill(setup, tmp_path, monkeypatch):
    model, cifs = setup["model"], tmp_path / "cifs"
    _write_cifs(cifs, setup["table"].iloc[:40])
    embedded = []
    encode = model.encode_crystals
    monkeypatch.setattr(model, "encode_crystals", lambda cs, **kw: (embedded.extend(c.id for c in cs), encode(cs, **kw))[1])

    # a run killed after 25 files: the checkpoint (every 10) holds the first 20
    def kill(done, total):
        if done == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Index.empty(model).add(cifs, model, progress=kill, checkpoint=tmp_path / "ix", checkpoint_every=10)
    resumed = Index.load(tmp_path / "ix")
    assert resumed.count == 20
    embedded.clear()
    counts = resumed.add(cifs, model, checkpoint=tmp_path / "ix", checkpoint_every=10)
    assert counts == {"indexed": 20, "failed": 0, "skipped": 20} and len(embedded) == 20
    assert sorted(Index.load(tmp_path / "ix").meta["id"]) == sorted(setup["index"].meta["id"])

    embedded.clear()
    assert resumed.add(cifs, model) == {"indexed": 0, "failed": 0, "skipped": 40} and embedded == []
    new = setup["table"].iloc[40:45]
    _write_cifs(cifs, new)
    assert resumed.add(cifs, model) == {"indexed": 5, "failed": 0, "skipped": 40}
    assert sorted(embedded) == sorted(new["material_id"]) and resumed.count == 45


def test_ann_recall_is_measured(setup, tmp_path):
    model = setup["model"]
    ann = Index.build(setup["cifs"], model, ann=True)
    assert ann.kind == "hnsw" and ann.recall_at_10 is not None and ann.recall_at_10 >= 0.9
    assert ann.info["ann"]["recall_queries"] == 40
    exact = setup["index"].search("metallic alloy", k=10, model=model)
    approx = ann.search("metallic alloy", k=10, model=model)
    assert len({r["id"] for r in exact} & {r["id"] for r in approx}) >= 9
    ann.save(tmp_path / "ann")
    loaded = Index.load(tmp_path / "ann")
    assert loaded.recall_at_10 == ann.recall_at_10
    assert loaded.search("metallic alloy", k=10, model=model) == approx
    assert all(r["spacegroup_number"] == 62 for r in loaded.search("alloy", k=5, model=model, spacegroup=62))


def test_empty_index_is_a_clear_error(setup, tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.cif").write_text("not a cif\n")
    index = Index.build(tmp_path / "bad", setup["model"])
    assert index.count == 0 and len(index.failed) == 1
    with pytest.raises(ValueError, match="empty"):
        index.search("oxide", model=setup["model"])
    with pytest.raises(ValueError, match="empty query"):
        setup["index"].search("  ", model=setup["model"])


# ---- the command line ----

def _cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "crystalclip.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)


def test_cli_index_search_like_classify(setup, tmp_path):
    cifs, model_dir, out = setup["cifs"], setup["model"].path, tmp_path / "ix"
    built = _cli("index", cifs, "--model", model_dir, "--out", out, "--ann", "--json")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert (summary["indexed"], summary["failed"], summary["skipped"], summary["count"]) == (40, 2, 0, 40)
    assert summary["kind"] == "hnsw" and summary["recall_at_10"] >= 0.9
    assert {Path(f["path"]).name for f in summary["failed_inputs"]} == {"broken.cif", "empty.cif"}

    found = _cli("search", "an oxide", "--index", out, "-k", "4", "--filter", "elements=O", "--json")
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4]
    assert all("O" in setup["index"].meta.set_index("id").loc[r["id"], "elements"] for r in results)

    like = _cli("search", "--like", cifs / "mp-20744.cif", "--index", out, "-k", "3", "--filter", "spacegroup=225")
    assert like.returncode == 0, like.stderr
    assert "mp-20744" in like.stdout and "ZrInNi2" in like.stdout

    shots = _cli("classify", cifs / "mp-20744.cif", cifs / "broken.cif", cifs / "mp-1077089.cif",
                 "--labels", "superconductor, ferromagnet,insulator", "--template", "a {} material",
                 "--model", model_dir, "--json")
    assert shots.returncode == 0, shots.stderr
    report = json.loads(shots.stdout)
    assert report["labels"] == ["superconductor", "ferromagnet", "insulator"]
    assert [r["id"] for r in report["results"]] == ["mp-20744", "mp-1077089"]
    for r in report["results"]:
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert Path(report["failed"][0]["path"]).name == "broken.cif" and report["failed"][0]["reason"]
    assert "broken.cif" in shots.stderr and "Traceback" not in shots.stderr


def test_cli_errors_are_clean(setup, tmp_path):
    out = tmp_path / "ix"
    setup["index"].save(out)
    other = setup["root"] / "model2"
    if not other.exists():
        _random_model(other, seed=1)
    cases = [
        (("search", "  ", "--index", out), "empty query"),
        (("search", "oxide", "--index", out, "-k", "0"), "between 1 and 100"),
        (("search", "oxide", "--index", out, "-k", "101"), "between 1 and 100"),
        (("search", "oxide", "--index", out, "--filter", "color=red"), "unknown filter"),
        (("search", "oxide", "--index", tmp_path / "missing"), "no index"),
        (("search", "oxide", "--index", out, "--model", other), "built with the model"),
        (("search", "oxide", "--like", setup["cifs"] / "mp-20744.cif", "--index", out), "not both"),
        (("search", "oxide", "--index", out, "--data", tmp_path), "not both"),
        (("classify", setup["cifs"], "--labels", "metal", "--template", "a {0} {1}"), "must hold one"),
        (("classify", setup["cifs"], "--labels", " , "), "at least one label"),
    ]
    for args, message in cases:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr, (args, result.stderr)


def test_batched_vector_search_equals_one_by_one(setup):
    index, model = setup["index"], setup["model"]
    queries = model.encode_texts(["an oxide", "a sulfide", "a metal"])
    batched = index.search_vectors(queries, k=4)
    assert batched == [index.search(q, k=4) for q in queries]


def test_formula_cache_overflow_keeps_the_batch(setup, monkeypatch):
    """When the formula cache fills up mid-way, the formulas of the batch being encoded survive it
    (a full corpus once failed with a KeyError here)."""
    import crystalclip.api as api

    model = setup["model"]
    from crystalclip.structures import parse_cif

    crystals = [parse_cif(path.read_text(), path.stem)[0] for path in sorted(setup["cifs"].glob("mp-*.cif"))[:6]]
    expected = model.encode_crystals(crystals)
    monkeypatch.setattr(api, "FORMULA_CACHE_SIZE", 4)
    model._formulas.clear()
    model.encode_crystals(crystals[:3])
    assert np.allclose(model.encode_crystals(crystals), expected, atol=1e-6)


def test_worker_featurization_gives_the_same_index(setup, tmp_path):
    """index --workers: graphs and symmetry inputs built in another process, same vectors, same failures."""
    table = setup["table"].iloc[:120]
    _write_cifs(tmp_path / "cifs", table)
    (tmp_path / "cifs" / "broken.cif").write_text("data_broken\n_cell_length_a 3.0\n")
    inline = Index.build(tmp_path / "cifs", setup["model"])
    pooled = Index.empty(setup["model"])
    counts = pooled.add(tmp_path / "cifs", setup["model"], workers=1)
    assert counts == {"indexed": 120, "failed": 1, "skipped": 0}
    assert pooled.meta["id"].tolist() == inline.meta["id"].tolist()
    assert np.allclose(pooled.faiss.reconstruct_n(0, 120), inline.faiss.reconstruct_n(0, 120), atol=1e-6)
    assert setup["model"]._pool is not None  # started once, kept for the next call


def test_device_option(setup):
    """load(device=...): "auto" is the CPU where there is no GPU; a device that is not there is a clear error."""
    from crystalclip.errors import BadInput

    auto = crystalclip.load(setup["root"] / "model", device="auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    texts = ["a cubic perovskite oxide", "layered sulfide"]
    assert np.allclose(auto.encode_texts(texts), setup["model"].encode_texts(texts), atol=1e-5)
    if not torch.cuda.is_available():
        with pytest.raises(BadInput, match="cannot run the model on 'cuda'"):
            crystalclip.load(setup["root"] / "model", device="cuda")
