"""The frozen-CHGNet crystal encoder: features computed once per dataset and reused, a trainable head,
and the same embedding through the dataset path and through encode_structures."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("chgnet")

from .conftest import SHARED  # noqa: E402

FAST = {"model.crystal_encoder": "chgnet", "model.symmetry.enabled": True, "train.epochs": 1,
        "train.batch_size": 16, "train.warmup_steps": 1}


def test_chgnet_features_are_cached_once_and_reused(tmp_path, monkeypatch):
    import crystalclip as cc
    from crystalclip.data.build import build_dataset
    from crystalclip.data.dataset import Dataset
    from crystalclip.encoding import embed_rows, row_potential, row_symmetry
    from crystalclip.models import chgnet
    from crystalclip.recipe import load_recipe
    from crystalclip.training import train

    (tmp_path / "mp").mkdir()
    table = pq.ParquetFile(SHARED / "mp-cifs" / "mp_cifs_00.parquet").read_row_group(0).slice(0, 48).to_pandas()
    table.to_parquet(tmp_path / "mp" / "part.parquet", index=False)
    build_dataset([tmp_path / "mp"], tmp_path / "data", workers=1)
    calls = []
    real = chgnet.chgnet_features
    monkeypatch.setattr(chgnet, "chgnet_features", lambda crystals, **kw: calls.append(len(crystals)) or real(crystals))
    train(tmp_path / "data", load_recipe("default", FAST), tmp_path / "run", progress_bar=False)
    assert sum(calls) == 48  # every structure once
    cache = list((tmp_path / "data" / "potential_cache").glob("chgnet-*/part-*.npz"))
    assert len(cache) == 1

    def no_forward(crystals, **kw):
        raise AssertionError("CHGNet ran again: the cache was not used")

    monkeypatch.setattr(chgnet, "chgnet_features", no_forward)
    train(tmp_path / "data", load_recipe("default", FAST), tmp_path / "again", progress_bar=False)
    monkeypatch.setattr(chgnet, "chgnet_features", real)

    model = cc.load(tmp_path / "run")
    data = Dataset(tmp_path / "data")
    rows = np.array([0, 5, 9])
    through_dataset = embed_rows(model.clip, data.graphs, rows, data.formula_features(model.clip.formula_tower),
                                 symmetry=row_symmetry(model.clip, data), potential=row_potential(model.clip, data))
    through_api = model.encode_structures([data.crystal(int(r)) for r in rows])
    np.testing.assert_allclose(through_dataset, through_api, atol=1e-5)
    features = row_potential(model.clip, data)
    assert features.shape == (48, chgnet.CHGNET_DIM) and float(features.abs().sum(1).min()) > 0
