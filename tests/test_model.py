"""The two-tower model: a short real training run, save/load, the facade (losses: test_losses.py)."""
import json

import numpy as np
import pytest
import torch

import crystalclip as cc
from crystalclip.models.clip import CrystalClip, ModelConfig
from crystalclip.recipe import load_recipe

from .conftest import mp40_table


def test_short_training_beats_random_on_held_out(trained_run):
    root, summary = trained_run
    metrics = json.loads((root / "run" / "config.json").read_text())["training"]
    assert metrics == summary
    from crystalclip.data.dataset import Dataset
    from crystalclip.encoding import embed_rows, embed_text_features, row_symmetry, split_queries
    from crystalclip.evaluation import retrieval_metrics

    model = CrystalClip.load(root / "run")
    data = Dataset(root / "data")
    rows = data.rows("test")
    texts, formulas = data.text_features(model.text_tower), data.formula_features(model.text_tower)
    ids, owners = split_queries(data, rows)
    result = retrieval_metrics(embed_text_features(model, texts[torch.as_tensor(ids)]),
                               embed_rows(model, data.graphs, rows, formulas, symmetry=row_symmetry(model, data)), owners)
    assert result["text_to_crystal"]["R@10"] > 3 * result["random"]["R@10"]
    for name in ("metrics.csv", "training_curve.png", "model.safetensors", "config.json"):
        assert (root / "run" / name).stat().st_size > 0


def test_save_load_identical_embeddings_and_unit_rows(trained_run):
    root, _ = trained_run
    structures = cc.read_structures(mp40_table()["cif"].iloc[0]) + cc.read_structures(mp40_table()["cif"].iloc[1])
    a = cc.load(root / "run")
    za = a.encode_structures(structures)
    a.clip.save(root / "copy")
    zb = cc.load(root / "copy").encode_structures(structures)
    np.testing.assert_array_equal(za, zb)
    np.testing.assert_allclose(np.linalg.norm(za, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(za, a.encode_structures(structures))  # deterministic
    t = a.encode_texts(["a cubic perovskite oxide", "a layered sulfide"])
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    p = a.classify(structures, ["metal", "insulator", "oxide"])
    assert p.shape == (2, 3) and np.allclose(p.sum(1), 1)


def test_loading_refuses_a_pickle(tmp_path, trained_run):
    root, _ = trained_run
    (tmp_path / "config.json").write_text((root / "run" / "config.json").read_text())
    torch.save({"weights": torch.zeros(3)}, tmp_path / "model.safetensors")  # a pickle under the right name
    with pytest.raises(ValueError, match="pickle"):
        cc.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        cc.load(tmp_path / "nowhere")


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown recipe"):
        load_recipe("nope")
    assert load_recipe("default").model.embed_dim == 256


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    import pandas as pd

    from crystalclip.data.build import build_dataset
    from crystalclip.training import train

    from .conftest import MP40

    build_dataset([MP40 / "captions_708.csv"], tmp_path / "data", source_options={"limit": 160}, workers=1)
    recipe = load_recipe("default", {"train.epochs": 2, "train.batch_size": 32, "train.warmup_steps": 2})
    train(tmp_path / "data", recipe, tmp_path / "run", progress_bar=False)
    recipe.train.epochs = 3
    summary = train(tmp_path / "data", recipe, tmp_path / "run", resume=True, progress_bar=False)
    epochs = pd.read_csv(tmp_path / "run" / "metrics.csv")["epoch"].tolist()
    assert epochs == [0, 1, 2] and summary["epochs"] == 3


def test_fine_tuning_the_top_layer_of_the_text_tower(tmp_path):
    from crystalclip.data.build import build_dataset
    from crystalclip.models.text import get_text_tower
    from crystalclip.training import train

    from .conftest import MP40

    build_dataset([MP40 / "captions_708.csv"], tmp_path / "data", source_options={"limit": 80}, workers=1)
    recipe = load_recipe("default", {"train.epochs": 1, "train.batch_size": 32, "train.warmup_steps": 1,
                                     "model.text.trainable_layers": 1})
    train(tmp_path / "data", recipe, tmp_path / "run", progress_bar=False)
    tuned = cc.load(tmp_path / "run")
    assert not tuned.clip.text_tower.frozen
    base = get_text_tower()  # the shared pretrained tower is untouched
    top = "model.encoder.layer.5.output.dense.weight"
    assert not torch.equal(dict(tuned.clip.text_tower.named_parameters())[top], dict(base.named_parameters())[top])
    z = tuned.encode_texts(["a garnet"])
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
