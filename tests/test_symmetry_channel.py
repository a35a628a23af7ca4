"""The symmetry channel sees what spglib sees; formula-free swaps change only the texts they should;
one bad structure never fails a whole batch."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import spglib
import torch

from crystalclip.structures import parse_cif
from crystalclip.structures.symmetry import CRYSTAL_SYSTEMS, symmetry_features
from crystalclip.text.masking import mask_formulas

from .conftest import SHARED


@pytest.fixture(scope="module")
def mp_crystals():
    table = pq.ParquetFile(SHARED / "mp-cifs" / "mp_cifs_00.parquet").read_row_group(0).slice(0, 120).to_pandas()
    return [parse_cif(cif, mid)[0] for mid, cif in zip(table["material_id"], table["cif"])]


def test_symmetry_features_see_the_space_group_spglib_finds(mp_crystals):
    systems = [name for _, name in CRYSTAL_SYSTEMS]
    for crystal in mp_crystals:
        found = spglib.get_symmetry_dataset((crystal.lattice, crystal.frac_coords,
                                             [max(s, key=s.get) for s in crystal.species]), symprec=0.1)
        number, values = symmetry_features(crystal)
        assert number == found.number and values.dtype == np.float32 and np.isfinite(values).all()
        system = next(name for last, name in CRYSTAL_SYSTEMS if found.number <= last)
        assert values[:7].argmax() == systems.index(system) and values[:7].sum() == 1


def test_the_symmetry_channel_changes_the_embedding_with_the_space_group():
    from crystalclip.graphs import build_graph
    from crystalclip.data.batching import collate_graphs
    from crystalclip.models.clip import CrystalClip
    from crystalclip.recipe import load_recipe

    torch.manual_seed(0)
    model = CrystalClip(load_recipe("default", {"model.symmetry.enabled": True,
                                                "model.composition_channel": False}).model).eval()
    import pandas as pd

    crystal = parse_cif(pd.read_csv(SHARED / "mp40" / "captions_1000.csv", nrows=1)["cif"][0], "x")[0]
    batch = collate_graphs([build_graph(crystal), build_graph(crystal)])
    number, values = symmetry_features(crystal)
    features = torch.from_numpy(np.stack([values, values]))
    with torch.no_grad():
        same = model.embed_crystals(batch, None, (torch.tensor([number, number]), features))
        other = model.embed_crystals(batch, None, (torch.tensor([number, 1]), features))
    assert torch.allclose(same[0], same[1]) and not torch.allclose(other[0], other[1])
    with pytest.raises(ValueError, match="symmetry"):
        model.embed_crystals(batch)


def test_formula_free_swap_changes_only_the_texts_it_should(tmp_path):
    from crystalclip.data.build import build_dataset
    from crystalclip.data.dataset import Dataset
    from crystalclip.data.loader import Augmentation, PairCollate

    table = pq.ParquetFile(SHARED / "mp-cifs" / "mp_cifs_00.parquet").read_row_group(0).slice(0, 60).to_pandas()
    (tmp_path / "mp").mkdir()
    table.to_parquet(tmp_path / "mp" / "part.parquet", index=False)
    build_dataset([tmp_path / "mp"], tmp_path / "data", workers=1)
    data = Dataset(tmp_path / "data")
    pool = data.text_pool("pairs", formula_free=True)
    assert pool.texts == data.own.texts and len(pool.formula_free) == len(pool.texts)
    assert all(mask_formulas(t) == t for t in pool.formula_free)
    rows = list(range(len(data)))
    torch.manual_seed(0)
    never = PairCollate(data, data.graphs, pool, augmentation=Augmentation(formula_free=0.0))(rows)
    always = PairCollate(data, data.graphs, pool, augmentation=Augmentation(formula_free=1.0))(rows)
    half = PairCollate(data, data.graphs, pool, augmentation=Augmentation(formula_free=0.5))(rows)
    assert never.texts == [pool.texts[i] for i in never.text_ids]
    assert always.texts == [pool.formula_free[i] for i in always.text_ids]
    swapped = [t == pool.formula_free[i] != pool.texts[i] for t, i in zip(half.texts, half.text_ids.tolist())]
    assert 0 < sum(swapped) < len(rows)
    assert torch.equal(never.text_ids, always.text_ids)  # the same pairs: only the wording changed


def test_one_bad_structure_never_fails_the_batch(tmp_path):
    import crystalclip as cc

    good = (SHARED / "mp40" / "captions_1000.csv")
    import pandas as pd

    cifs = pd.read_csv(good, nrows=3)["cif"].tolist()
    (tmp_path / "a.cif").write_text(cifs[0])
    (tmp_path / "b.cif").write_text("data_broken\n_cell_length_a 3\n")
    (tmp_path / "c.cif").write_text(cifs[1])
    model = cc.load("default")
    with pytest.raises(ValueError, match="b.cif"):
        model.encode_structures(tmp_path)
    encoded = model.encode_structures(tmp_path, errors="skip")
    assert encoded.embeddings.shape == (2, model.dim) and encoded.index == [0, 2]
    assert len(encoded.failures) == 1 and encoded.failures[0][0] == 1 and "b.cif" in encoded.failures[0][1]
    np.testing.assert_allclose(encoded.embeddings, model.encode_structures([tmp_path / "a.cif", tmp_path / "c.cif"]),
                               atol=1e-6)


def test_the_structure_recipe_beats_its_composition_only_twin_on_formula_free_retrieval(tmp_path):
    """A short run on 1,200 real MP structures: with the formulas gone from the queries (the describer's
    formula-free twins of the held-out structures' descriptions), a tower that sees the structure and
    its symmetry must retrieve better than one that sees only the bag of elements."""
    import crystalclip as cc
    from crystalclip.data.build import build_dataset
    from crystalclip.data.dataset import Dataset
    from crystalclip.recipe import load_recipe
    from crystalclip.training import train

    (tmp_path / "mp").mkdir()
    table = pq.ParquetFile(SHARED / "mp-cifs" / "mp_cifs_03.parquet").read_row_group(0).slice(0, 1200).to_pandas()
    table.to_parquet(tmp_path / "mp" / "part.parquet", index=False)
    build_dataset([tmp_path / "mp"], tmp_path / "data")
    data = Dataset(tmp_path / "data")
    test = data.rows("test")
    crystals = [data.crystal(int(r)) for r in test]
    queries = [twins[0] for twins in data.column("texts_formula_free", test)]
    fast = {"train.epochs": 10, "train.batch_size": 128, "train.warmup_steps": 5}
    recall = {}
    for name, overrides in {"structure": {}, "composition": {"model.crystal_encoder": "composition",
                                                             "model.symmetry.enabled": False}}.items():
        train(tmp_path / "data", load_recipe("default", {**fast, **overrides}), tmp_path / name, progress_bar=False)
        model = cc.load(tmp_path / name)
        scores = model.encode_texts(queries) @ model.encode_structures(crystals).T
        top = np.argsort(-scores, axis=1)[:, :10]
        recall[name] = float(np.mean([i in top[i] for i in range(len(queries))]))
    assert recall["structure"] > recall["composition"] + 0.05, recall
    assert recall["composition"] > 3 * 10 / len(test)  # both well above random: the twins still name structure
