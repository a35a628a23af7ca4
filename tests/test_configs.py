"""Configs are strict and typed; the model owns its graph settings; AdamW decays weight matrices only."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from crystalclip.errors import ConfigError, ModelMismatch
from crystalclip.recipe import load_recipe

from .conftest import MP40


@pytest.mark.parametrize("overrides, message", [
    ({"model.embed_dimm": 128}, "unknown key model.embed_dimm (did you mean model.embed_dim?)"),
    ({"model.graph.max_neigbors": 16}, "unknown key model.graph.max_neigbors (did you mean model.graph.max_neighbors?)"),
    ({"train.lr": "fast"}, "train.lr must be a number, not 'fast'"),
    ({"augment.max_strian": 0.1}, "unknown key augment.max_strian (did you mean augment.max_strain?)"),
    ({"loss": {"name": "cosface", "margn": 0.2}}, "unknown key loss.margn for the cosface loss (did you mean loss.margin?)"),
    ({"loss": "infonse"}, "unknown loss 'infonse' (did you mean infonce?)"),
    ({"model.cgcnn.pooling": "max"}, "pooling must be one of"),
])
def test_a_bad_recipe_key_or_value_is_one_clear_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_recipe("default", overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_bad_stage_key_fails_when_the_recipe_is_read(tmp_path):
    import yaml

    recipe = load_recipe("clasp").to_dict()
    recipe["stages"][1]["train"] = {"epochz": 1}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ConfigError, match=r"unknown key stages\[1\]\.train\.epochz \(did you mean stages\[1\]\.train\.epochs\?\)"):
        load_recipe(str(path))


def test_cli_set_with_an_unknown_key_exits_2_with_the_suggestion(tmp_path):
    result = subprocess.run([sys.executable, "-m", "crystalclip.cli", "train", "--data", str(tmp_path), "--out",
                             str(tmp_path / "run"), "--set", "model.embed_dimm=128"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown key model.embed_dimm (did you mean model.embed_dim?)" in " ".join(result.stderr.split())


def test_adamw_leaves_biases_norms_and_the_logit_scale_undecayed():
    from crystalclip.models.clip import CrystalClip
    from crystalclip.training import parameter_groups

    model = CrystalClip(load_recipe("default").model)
    groups = parameter_groups(model, lr=1e-3, text_lr=None, weight_decay=0.1)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["log_logit_scale"]) not in decayed
    assert id(named["crystal_head.0.weight"]) in decayed and id(named["crystal_head.0.bias"]) not in decayed
    norms = [n for n in named if ".bn" in n and named[n].requires_grad]
    assert norms and not any(id(named[n]) in decayed for n in norms)
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())


def test_the_model_owns_its_graph_settings(tmp_path):
    """A model with 16 neighbours trains on a dataset built with 16, embeds a structure identically
    through the dataset path and through encode_structures, and refuses a 12-neighbour dataset."""
    import crystalclip as cc
    from crystalclip.data.build import build_dataset
    from crystalclip.data.dataset import Dataset
    from crystalclip.encoding import embed_rows, row_symmetry
    from crystalclip.graphs import GraphConfig
    from crystalclip.training import train

    fast = {"train.epochs": 1, "train.batch_size": 32, "train.warmup_steps": 1, "model.graph.max_neighbors": 16}
    build_dataset([MP40 / "captions_708.csv"], tmp_path / "d16", source_options={"limit": 80}, workers=1,
                  graph_config=GraphConfig(max_neighbors=16))
    train(tmp_path / "d16", load_recipe("default", fast), tmp_path / "run", progress_bar=False)
    model = cc.load(tmp_path / "run")
    assert model.graph_config.max_neighbors == 16
    data = Dataset(tmp_path / "d16")
    row = int(data.rows("test")[0])
    formulas = data.formula_features(model.clip.formula_tower)
    through_dataset = embed_rows(model.clip, data.check_graphs(model.graph_config), np.array([row]), formulas,
                                 symmetry=row_symmetry(model.clip, data))
    through_api = model.encode_structures([data.crystal(row)])
    np.testing.assert_allclose(through_dataset, through_api, atol=1e-5)
    assert data.graphs[row].num_edges > 12 * data.graphs[row].num_sites  # 16 neighbours a site, not 12

    build_dataset([MP40 / "captions_708.csv"], tmp_path / "d12", source_options={"limit": 80}, workers=1)
    with pytest.raises(ModelMismatch, match="--max-neighbors 16"):
        train(tmp_path / "d12", load_recipe("default", fast), tmp_path / "run12", progress_bar=False)
