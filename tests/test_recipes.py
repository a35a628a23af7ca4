"""The paper recipes: they load, their models build, and the training features they rely on work
(derived texts, two stages from the previous weights with a fresh optimizer, augmented views, a
wall-clock budget, loss settings) on a small real dataset."""
import json

import numpy as np
import pytest
import torch

from crystalclip.data.dataset import Dataset
from crystalclip.data.loader import Augmentation, PairCollate
from crystalclip.models.clip import CrystalClip, ModelConfig
from crystalclip.recipe import load_recipe, loss_settings, merge
from crystalclip.training import train

from .conftest import mp40_table

RECIPES = ("default", "clamp", "clasp", "clac")
FAST = {"train.batch_size": 32, "train.warmup_steps": 2, "train.max_sites": 40}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """300 real mp40 structures with their captions, and 'keywords' derived by hand."""
    from crystalclip.data.build import build_dataset

    root = tmp_path_factory.mktemp("recipes")
    mp40_table().head(300).to_csv(root / "mp40.csv", index=False)
    build_dataset([root / "mp40.csv"], root / "data")
    data = Dataset(root / "data")
    data.write_texts("keywords", {i: [", ".join(t[0].split()[:4])] for i, t in zip(data.table["id"], data.column("texts"))})
    return root / "data"


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_load_and_build(name):
    recipe = load_recipe(name)
    assert recipe.name == name
    from crystalclip.losses import get_loss

    for settings in [recipe, *(recipe.stage(n)[2] for n in range(len(recipe.stages)))]:
        get_loss(*loss_settings(settings.loss)[:1], **loss_settings(settings.loss)[1])  # known loss, accepted keys
    model = CrystalClip(recipe.model)
    assert model.config.embed_dim == recipe.model.embed_dim


def test_clasp_follows_the_paper():
    recipe = load_recipe("clasp")
    (_, _, pretrain), (_, _, finetune) = recipe.stage(0), recipe.stage(1)
    assert loss_settings(pretrain.loss) == ("cosface", {"margin": 0.5, "scale": 3.0})
    assert loss_settings(finetune.loss) == ("cosface", {"margin": 0.1, "scale": 10.0})
    assert finetune.data.texts == "keywords" and recipe.model.text.trainable_layers == 0
    assert recipe.model.head_layers == 3 and recipe.model.cgcnn.num_layers == 5


def test_merge_is_recursive_and_leaves_inputs_alone():
    base = {"train": {"lr": 1.0, "epochs": 3}, "loss": "infonce"}
    merged = merge(base, {"train": {"lr": 0.5}, "loss": {"name": "cosface"}})
    assert merged == {"train": {"lr": 0.5, "epochs": 3}, "loss": {"name": "cosface"}}
    assert base["train"]["lr"] == 1.0


def test_text_pool_merges_derived_texts(dataset):
    data = Dataset(dataset)
    pool = data.text_pool(["pairs", "keywords"])
    keywords = Dataset(dataset).read_texts("keywords")
    row = 0
    texts = [pool.texts[i] for i in pool.row_texts[row]]
    assert texts == data.column("texts", [row])[0] + keywords[data.table["id"].iloc[row]]
    # the texts are read from disk when asked; in memory they live once each, in the pools
    assert not {"texts", "texts_formula_free", "cif"} & set(data.table.columns)
    assert [[data.texts[i] for i in ids] for ids in data.row_texts] == data.column("texts") == list(data.iter_column("texts", 7))
    assert data.column("texts", [5, 2]) == [data.column("texts")[5], data.column("texts")[2]]
    with pytest.raises(FileNotFoundError, match="crystalclip data summarize"):
        data.text_pool("summaries")


def test_a_split_reads_its_own_texts_and_a_fixed_share_of_twins(dataset):
    """of_rows: the training rows' texts only; with_twins: a fixed, seeded share of the texts replaced
    by their formula-free twins for the whole run (one form of each text for the tower to read)."""
    data = Dataset(dataset)
    full = data.text_pool("pairs", formula_free=True)
    train = data.rows("train")
    pool = full.of_rows(train)
    held_out = np.setdiff1d(np.arange(len(data)), train)
    assert all(len(pool.row_texts[r]) == 0 for r in held_out)
    assert {pool.texts[i] for r in train for i in pool.row_texts[r]} == {full.texts[i] for r in train for i in full.row_texts[r]}
    assert not {pool.texts[i] for r in train for i in pool.row_texts[r]} & \
        ({full.texts[i] for r in held_out for i in full.row_texts[r]} - {full.texts[i] for r in train for i in full.row_texts[r]})
    half = pool.with_twins(0.5, seed=0)
    twins = dict(zip(pool.texts, pool.formula_free))
    changed = [t for t in pool.texts if twins[t] != t]
    swapped = [t for t in changed if twins[t] in half.texts and t not in half.texts]
    assert 0.3 < len(swapped) / len(changed) < 0.7  # about half of the texts that have another form
    assert pool.with_twins(0.5, seed=0).texts == half.texts != pool.with_twins(0.5, seed=1).texts
    assert pool.with_twins(0.0).texts == pool.texts and set(pool.with_twins(1.0).texts) <= set(pool.formula_free)
    assert [len(r) for r in half.row_texts] == [len(r) for r in pool.row_texts]
    with pytest.raises(ValueError, match="formula_free_by"):
        load_recipe("default", {"augment.formula_free_by": "epoch"})


def test_augmented_views_move_atoms_and_change_texts(dataset):
    data = Dataset(dataset)
    rows = data.rows("train")[:8].tolist()
    plain = PairCollate(data, data.graphs)(rows)
    torch.manual_seed(0)
    collate = PairCollate(data, data.graphs, augmentation=Augmentation(max_displacement=0.5, max_strain=0.05, sentence_drop=0.2,
                                                          mask_fraction=0.15), views=2)
    batch = collate(rows)
    assert batch.text_features is None  # augmented texts go through the tower
    assert batch.second_view is not None
    assert batch.graphs.num_crystals == plain.graphs.num_crystals == 8
    assert not torch.equal(batch.graphs.edge_dist, batch.second_view.graphs.edge_dist)
    assert any("[MASK]" in t for t in batch.texts)


def test_two_stages_start_from_the_first_stages_weights(dataset, tmp_path):
    """Stage 2 with lr 0 must end exactly where stage 1 ended: it starts from those weights, with a
    fresh optimizer of its own (Lightning's resume would restore the first stage's optimizer)."""
    recipe = load_recipe("clasp", {**FAST, "train.epochs": 2, "model.cgcnn.num_layers": 2})
    recipe.stages[1]["train"] = {"epochs": 1, "lr": 0.0, "warmup_steps": 0}
    summary = train(dataset, recipe, tmp_path / "run", progress_bar=False)
    assert [s["stage"] for s in summary["stages"]] == ["pretrain", "finetune"]
    first = dict(CrystalClip.load(tmp_path / "run" / "pretrain").named_parameters())
    final = dict(CrystalClip.load(tmp_path / "run").named_parameters())  # (batch-norm statistics do move)
    assert first.keys() == final.keys()
    assert all(torch.equal(first[k], final[k]) for k in first)
    fresh = dict(CrystalClip(recipe.model).named_parameters())
    assert not torch.equal(fresh["crystal_head.0.weight"], final["crystal_head.0.weight"])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["recipe"]["stages"][1]["data"]["texts"] == "keywords"
    stamp = (tmp_path / "run" / "finetune" / "model.safetensors").stat().st_mtime_ns
    again = train(dataset, recipe, tmp_path / "run", resume=True, progress_bar=False)  # both stages were done
    assert [s["stage"] for s in again["stages"]] == ["pretrain", "finetune"] and again["epochs"] == 3
    assert (tmp_path / "run" / "finetune" / "model.safetensors").stat().st_mtime_ns == stamp


def test_time_budget_stops_training(dataset, tmp_path):
    recipe = load_recipe("default", {**FAST, "train.epochs": 500, "train.max_minutes": 0.15, "train.epoch_rows": 64})
    summary = train(dataset, recipe, tmp_path / "run", progress_bar=False)
    assert 1 <= summary["epochs"] < 500
    assert summary["train_seconds"] < 60


def test_fine_tuned_tower_with_augmentations_and_intramodal_terms_trains(dataset, tmp_path):
    """CLaC's path end to end on a few steps: texts through a trainable tower, augmented views of
    both sides, intramodal terms; the tower's weights change."""
    recipe = load_recipe("clac", {**FAST, "train.epochs": 1, "train.epoch_rows": 64, "intramodal": 0.5,
                                  "data.texts": ["pairs", "keywords"], "model.text.max_length": 32,
                                  "model.text.trainable_layers": 1, "train.text_lr": 1e-3})
    before = CrystalClip(recipe.model).text_tower.state_dict()
    summary = train(dataset, recipe, tmp_path / "run", progress_bar=False)
    assert summary["epochs"] == 1 and np.isfinite(summary["best_val_R@10"])
    after = CrystalClip.load(tmp_path / "run").text_tower.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(".layer.5." in k for k in changed)  # the top layer only


def test_compare_trains_evaluates_tabulates_and_reuses_runs(dataset, tmp_path, monkeypatch):
    from crystalclip.compare import NOTES, compare

    fast = tmp_path / "fast.yaml"
    recipe = load_recipe("clasp", {**FAST, "model.cgcnn.num_layers": 2, "train.epoch_rows": 64})
    import yaml

    fast.write_text(yaml.safe_dump(recipe.to_dict()))
    results = tmp_path / "results.md"
    results.write_text(f"old table\n\n{NOTES}\nwritten by hand\n")
    reports = compare(["default", str(fast)], dataset, tmp_path / "runs", minutes=0.05, results=results,
                      log=lambda *a: None)
    assert set(reports) == {"default", "fast"}
    text = results.read_text()
    assert "old table" not in text and text.rstrip().endswith("written by hand")
    for row in ("| default |", "| fast |", "| composition baseline |", "| formula baseline |"):
        assert row in text
    assert "0.05 minutes" in text and (tmp_path / "results.png").stat().st_size > 10_000
    weights = tmp_path / "runs" / "fast" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    compare(["default", str(fast)], dataset, tmp_path / "runs", minutes=0.05, results=results, log=lambda *a: None)
    assert weights.stat().st_mtime_ns == stamp  # reused, not retrained


def test_cli_writes_derived_texts(dataset):
    from typer.testing import CliRunner

    from crystalclip.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["data", "describe", str(dataset), "--limit", "20", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == 20
    descriptions = Dataset(dataset).read_texts("descriptions")
    assert len(descriptions) == 20 and all("space group" in t[0] for t in descriptions.values())
    result = runner.invoke(app, ["data", "keywords", str(dataset), "--llm-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 2 and "--llm-model" in result.output


def test_batches_come_from_worker_processes_and_memory_mapped_features(dataset, tmp_path):
    """train.workers > 0: DataLoader processes assemble the batches; the frozen tower's features are
    gathered from the memory-mapped cache (no dense copy), equal to the dense ones."""
    from crystalclip.data.text_cache import CachedRows

    data = Dataset(dataset)
    model = CrystalClip(load_recipe("default").model)
    rows = data.feature_rows(data.texts, model.text_tower)
    assert isinstance(rows, CachedRows)
    assert not rows.array.flags.writeable  # the mapping itself, read-only, not a copy
    picked = torch.tensor([5, 0, 5, len(data.texts) - 1])
    assert torch.equal(rows[picked], data.tower_features(data.texts, model.text_tower)[picked])
    recipe = load_recipe("default", {**FAST, "train.epochs": 2, "train.workers": 2})
    summary = train(dataset, recipe, tmp_path / "run", progress_bar=False)
    assert summary["epochs"] == 2 and summary["best_val_R@10"] > 10 / len(data.rows("val"))
    with pytest.raises(ValueError, match="workers"):
        load_recipe("default", {"train.workers": -1})


def test_symmetry_cache_is_memory_mapped_and_validation_reads_a_seeded_sample(dataset):
    """The symmetry channel's inputs are gathered from memory-mapped .npy files; a val split larger
    than train.val_rows is validated on a seeded sample of that many rows."""
    from crystalclip.data.text_cache import CachedRows
    from crystalclip.structures.symmetry import symmetry_features
    from crystalclip.training import ClipModule

    data = Dataset(dataset)
    numbers, values = data.symmetry_features(0.1)
    assert isinstance(values, CachedRows) and not values.array.flags.writeable and len(values) == len(data)
    number, expected = symmetry_features(data.crystal(7), 0.1)
    assert numbers[[7]].item() == number and torch.equal(values[[7]][0], torch.from_numpy(expected))
    again = Dataset(dataset).symmetry_features(0.1)  # read back, not computed again
    assert torch.equal(again[1][np.arange(len(data))], values[np.arange(len(data))])

    recipe = load_recipe("default", {"train.val_rows": 5})
    model = CrystalClip(recipe.model)
    module = ClipModule(recipe, model, data, data.graphs, None, (numbers, values), None, steps_per_epoch=1)
    val = data.rows("val")
    assert len(val) > 5 and len(module.val_rows) == 5 and set(module.val_rows) <= set(val)
    assert list(ClipModule(recipe, model, data, data.graphs, None, None, None, 1).val_rows) == list(module.val_rows)
    assert len(ClipModule(load_recipe("default"), model, data, data.graphs, None, None, None, 1).val_rows) == len(val)
    with pytest.raises(ValueError, match="val_rows"):
        load_recipe("default", {"train.val_rows": 1})
