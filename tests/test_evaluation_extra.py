"""The CLaC / CLAMP / CLaSP tests beside retrieval: multiple choice, property-targeted queries,
linear probes, CoRE MOF labels, and the report's headline."""
import json

import numpy as np
import pandas as pd
import pytest

from crystalclip.evaluation.choice import choice_embeddings, choice_sets, multiple_choice_metrics
from crystalclip.evaluation.labels import mof_labels
from crystalclip.evaluation.probe import logistic_probe, ridge_probe
from crystalclip.evaluation.property_queries import property_query_metrics, spearman
from crystalclip.text.masking import mask_formulas


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def rand_unit(n, d=16, seed=0):
    return unit(np.random.default_rng(seed).normal(size=(n, d)))


# ---------------------------------------------------------------- multiple choice


def test_choice_sets_mask_and_never_offer_a_second_answer():
    texts = [["SrTiO3 perovskite"], ["BaTiO3 perovskite"], ["layered sulfide"], ["garnet"],
             ["zeolite cage"], [], ["NaCl salt", "rock salt"]]
    positions, choices = choice_sets(texts, n_choices=4, seed=1)
    assert positions.tolist() == [0, 1, 2, 3, 4, 6]  # the structure without a text gets no item
    for i, c in zip(positions, choices):
        own = {mask_formulas(t) for t in texts[i]}
        assert c[0] in own and len(set(c)) == 4 and not own & set(c[1:])
        assert not any(f in t for t in c for f in ("SrTiO3", "BaTiO3", "NaCl"))
    # SrTiO3 and BaTiO3 captions mask to the same text: neither is a distractor for the other
    assert choices[0][0] == choices[1][0] == "material perovskite"
    assert choice_sets(texts, seed=1)[1] == choices  # seeded
    assert choice_sets(texts, seed=2)[1] != choices
    # too few other texts for three distractors: no items
    assert len(choice_sets([["a"], ["b"], ["c"]])[0]) == 0
    unmasked = choice_sets(texts, seed=1, mask=False)[1]
    assert unmasked[0][0] == "SrTiO3 perovskite"


def test_multiple_choice_perfect_random_and_degenerate():
    n = 3000
    crystals = rand_unit(n, seed=0)
    texts = [[f"caption {i}"] for i in range(n)]
    positions, choices = choice_sets(texts, seed=0, mask=False)
    assert len(positions) == n

    def lookup(table):
        return lambda ts: table[[int(t.split()[1]) for t in ts]]

    perfect = multiple_choice_metrics(crystals[positions], choice_embeddings(choices, lookup(crystals)), n_boot=200)
    assert perfect["accuracy"] == 1.0 and perfect["chance"] == 0.25 and perfect["n_items"] == n
    assert perfect["ci"] == [1.0, 1.0]
    noise = rand_unit(n, seed=1)
    chance = multiple_choice_metrics(crystals[positions], choice_embeddings(choices, lookup(noise)), n_boot=200)
    assert chance["accuracy"] == pytest.approx(0.25, abs=0.03)
    lo, hi = chance["ci"]
    assert lo < chance["accuracy"] < hi and hi - lo < 0.06
    flat = np.ones((n, 16), np.float32)  # every choice ties: counted wrong
    assert multiple_choice_metrics(crystals, np.broadcast_to(flat[:, None], (n, 4, 16)))["accuracy"] == 0.0


def test_multiple_choice_hand_example():
    crystals = unit([[1, 0], [0, 1]])
    choices = unit([[[1, 0.1], [0, 1], [1, -0.5], [-1, 0]],  # own caption closest: right
                    [[1, 1], [0, 1], [1, 0], [-1, 0]]])  # a distractor is closer: wrong
    m = multiple_choice_metrics(crystals, choices, ci=False)
    assert m["accuracy"] == 0.5 and m["n_choices"] == 4 and "ci" not in m
    assert multiple_choice_metrics(crystals, np.zeros((0, 4, 2)))["accuracy"] is None


# ---------------------------------------------------------------- property queries


def _angle_embedding(values, scale):
    theta = np.asarray(values, dtype=np.float64) * scale
    return unit(np.c_[np.cos(theta), np.sin(theta)])


def test_property_queries_planted_monotone_relation():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 6, 400)
    values[:20] = np.nan  # unknown: not in the pool
    crystals = _angle_embedding(np.nan_to_num(values), 0.25)
    grid = np.arange(0, 6.01, 0.5)
    m = property_query_metrics(crystals, _angle_embedding(grid, 0.25), grid, values, k=10, n_boot=300)
    assert m["spearman"] == pytest.approx(1.0) and m["chance"] == 0.0 and m["pool_size"] == 380 and m["k"] == 10
    assert m["mae"] < 0.2 < m["mae_pool_mean"]
    assert m["ci"] == pytest.approx([1.0, 1.0])
    assert [q["asked"] for q in m["queries"]] == grid.tolist()
    # queries that ignore the number retrieve the same structures: no correlation
    blind = property_query_metrics(crystals, np.repeat(_angle_embedding([3.0], 0.25), len(grid), 0), grid, values)
    assert blind["spearman"] is None and blind["ci"] is None
    shuffled = property_query_metrics(crystals, _angle_embedding(rng.permutation(grid), 0.25), grid, values)
    assert abs(shuffled["spearman"]) < 1


def test_property_queries_hand_example_and_spearman():
    crystals = unit([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    values = np.array([0.0, 1.0, 4.0, 6.0])
    queries = unit([[0, 1], [1, 0]])  # the first query asks 0 but points at the large values
    m = property_query_metrics(crystals, queries, [0.0, 2.0], values, k=2, ci=False)
    assert [q["mean"] for q in m["queries"]] == [5.0, 0.5]
    assert m["spearman"] == pytest.approx(-1.0)
    assert m["mae"] == pytest.approx((5 + 1.5) / 2)
    from scipy.stats import spearmanr

    a, b = np.random.default_rng(1).normal(size=(2, 30))
    b[:5] = b[0]  # ties
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)


# ---------------------------------------------------------------- linear probes


def test_ridge_probe_reads_an_encoded_target_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 5, 600)
    x = np.c_[y, rng.normal(size=(600, 31))] @ np.linalg.qr(rng.normal(size=(32, 32)))[0]  # rotated
    good = ridge_probe(x[:400], y[:400], x[400:], y[400:], n_boot=200)
    assert good["r2"] > 0.99 and good["mae"] < 0.05 and good["n_train"] == 400 and good["n_test"] == 200
    lo, hi = good["ci"]["r2"]
    assert lo <= good["r2"] <= hi
    assert good["baseline"]["r2"] == pytest.approx(1 - np.mean((y[400:] - y[:400].mean()) ** 2) / np.var(y[400:]))
    noise = ridge_probe(rng.normal(size=(400, 32)), y[:400], rng.normal(size=(200, 32)), y[400:], ci=False)
    assert noise["r2"] < 0.05 and noise["mae"] > 0.9 * noise["baseline"]["mae"]
    y_missing = y.copy()
    y_missing[[0, 450]] = np.nan
    assert ridge_probe(x[:400], y_missing[:400], x[400:], y_missing[400:], ci=False)["n_test"] == 199


def test_logistic_probe_separable_noise_and_missing():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.4
    x = np.c_[np.where(y, 1.0, -1.0) + 0.3 * rng.normal(size=500), rng.normal(size=(500, 15))]
    m = logistic_probe(x[:300], y[:300], x[300:], y[300:], n_boot=200)
    assert m["roc_auc"] == 1.0 and m["chance"] == 0.5 and m["n_pos"] == y[300:].sum()
    assert m["ci"]["roc_auc"] == [1.0, 1.0]
    noise = logistic_probe(rng.normal(size=(300, 16)), y[:300], rng.normal(size=(200, 16)), y[300:], ci=False)
    assert abs(noise["roc_auc"] - 0.5) < 0.12
    valid = np.ones(200, bool)
    valid[:7] = False
    assert logistic_probe(x[:300], y[:300], x[300:], y[300:], ci=False, valid_test=valid)["n_test"] == 193
    assert logistic_probe(x[:300], np.zeros(300, bool), x[300:], y[300:])["roc_auc"] is None  # one class


# ---------------------------------------------------------------- CoRE MOF labels


def test_mof_labels_from_a_hand_made_table():
    table = pd.DataFrame({
        "source": ["core-mof"] * 5 + ["mp40"],
        "Has_OMS": [True, False, True, None, False, None],
        "All_Metals": ["Cu", "Zn,Cu", "Cu,Na", None, "Zn", None],
        "LCD": [4.0, 6.0, 13.5, np.nan, 11.9, np.nan],
    })
    labels, valid, prompts = mof_labels(table, min_metal_count=2)
    assert list(labels) == ["mof:open_metal_sites", "mof:Cu", "mof:Zn", "mof:pore_small", "mof:pore_medium",
                            "mof:pore_large"]  # Na has one positive: no label
    assert labels["mof:open_metal_sites"].tolist() == [True, False, True, False, False, False]
    assert valid["mof:open_metal_sites"].tolist() == [True, True, True, False, True, False]
    assert labels["mof:Cu"].tolist() == [True, True, True, False, False, False]
    assert labels["mof:Zn"].tolist() == [False, True, False, False, True, False]
    assert valid["mof:Zn"].tolist() == [True, True, True, False, True, False]
    assert labels["mof:pore_small"].tolist() == [True, False, False, False, False, False]
    assert labels["mof:pore_medium"].tolist() == [False, True, False, False, True, False]  # 6 Å is medium
    assert labels["mof:pore_large"].tolist() == [False, False, True, False, False, False]
    assert prompts["mof:Cu"] == "Cu metal-organic framework"
    assert prompts["mof:open_metal_sites"] == "metal-organic framework with open metal sites"
    assert prompts["mof:pore_large"] == "metal-organic framework with large pores"
    assert "mof:Cu" not in mof_labels(table)[0]  # default: >= 30 positives
    assert mof_labels(table[["source"]]) == ({}, {}, {})


# ---------------------------------------------------------------- the report


def test_evaluate_reports_the_new_tests_for_every_system(trained_run):
    import crystalclip as cc
    from crystalclip.evaluation.report import evaluate, headline

    root, _ = trained_run
    model = cc.load(root / "run")
    report = evaluate(model, root / "data", "test", composition_model=model, plots_dir=None)
    json.dumps(report)
    for name in ("model", "composition_baseline", "formula_baseline"):
        r = report if name == "model" else report[name]
        choice = r["multiple_choice"]
        assert choice["masked"] and choice["chance"] == 0.25 and set(choice["by_source"]) == {"mp40"}
        overall = choice["overall"]
        assert overall["n_items"] == r["pool_size"] and 0 <= overall["accuracy"] <= 1
        assert overall["ci"][0] <= overall["accuracy"] <= overall["ci"][1]
        gap = r["property_queries"]["band_gap"]
        assert gap["k"] == 10 and gap["n_queries"] == 13 and gap["ci_over"] == "queries"
        assert gap["spearman"] is None or -1 <= gap["spearman"] <= 1
        assert "lcd" not in r["property_queries"]  # no CoRE MOF rows in this dataset
        probe = r["linear_probe"]
        assert probe["band_gap"]["n_test"] == r["by_source"]["mp40"]["pool_size"]
        assert probe["band_gap"]["n_train"] > 5 * probe["band_gap"]["n_test"]
        assert probe["band_gap"]["r2"] <= 1 and probe["band_gap"]["mae"] >= 0
        for label in ("metallic", "stable"):
            assert 0 <= probe[label]["roc_auc"] <= 1 and probe[label]["chance"] == 0.5
        assert not any(k.startswith("mof:") for k in r["zero_shot"])
    # the formula string says little about the band gap; a probe on it still beats the train mean
    assert report["formula_baseline"]["linear_probe"]["band_gap"]["r2"] > 0
    heads = headline(report)
    assert set(heads) == {"model", "composition_baseline", "formula_baseline"}
    head = heads["model"]
    assert head["t2c_R@10"] == {"value": report["text_to_crystal"]["R@10"],
                                "ci": report["ci"]["text_to_crystal"]["R@10"]}
    assert head["t2c_R@10[mp40_masked]"] == report["by_source"]["mp40_masked"]["text_to_crystal"]["R@10"]
    assert head["choice_acc_masked"]["value"] == report["multiple_choice"]["overall"]["accuracy"]
    assert head["zero_shot_auc[mp40]"] == pytest.approx(
        np.mean([report["zero_shot"][k]["roc_auc"] for k in ("metallic", "stable")]))
    assert head["zero_shot_auc[mof]"] is None and head["zero_shot_auc[amcsd]"] is None
    assert head["probe_band_gap_r2"]["value"] == report["linear_probe"]["band_gap"]["r2"]
    lo, hi = head["probe_metallic_auc"]["ci"]
    assert lo <= head["probe_metallic_auc"]["value"] <= hi
    assert heads["composition_baseline"] == head  # the same model twice scores the same
