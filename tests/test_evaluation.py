"""Evaluation: retrieval hit rules and exact random baseline, bootstrap, zero-shot, labels on real
AMCSD titles, formula masking on real MP-40 captions, plots."""
import ast
import json
import re
from functools import lru_cache

import numpy as np
import pytest

from crystalclip.evaluation import (bootstrap_ci, keyword_labels, plot_embedding_map, plot_recall_at_k,
                                    plot_roc_curves, property_labels, random_expected_rr,
                                    random_hit_probability, retrieval_metrics, unique_texts,
                                    zero_shot_metrics)
from crystalclip.evaluation.bootstrap import weighted_average_precision, weighted_roc_auc
from crystalclip.evaluation.retrieval import first_relevant_ranks, relevance_matrix
from crystalclip.text.masking import mask_formulas

from .conftest import mp40_table


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rand_unit(n, d=8, seed=0):
    return unit(np.random.default_rng(seed).normal(size=(n, d)))


# ---------------------------------------------------------------- retrieval


def test_perfect_embeddings_give_recall_one():
    c = rand_unit(50)
    m = retrieval_metrics(c.copy(), c, [{i} for i in range(50)])
    assert m["pool_size"] == 50 and m["num_text_queries"] == 50
    for d in ("text_to_crystal", "crystal_to_text"):
        assert m[d] == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MRR": 1.0}
    assert m["random"]["R@1"] == pytest.approx(1 / 50)
    assert set(m) >= {"pool_size", "num_text_queries", "text_to_crystal", "crystal_to_text", "random",
                      "random_crystal_to_text"}


def test_shared_text_is_hit_when_any_structure_retrieved():
    # crystals 0, 1, 2; text 0 is shared by crystals 1 and 2; text 1 belongs to crystal 0
    c = unit(np.eye(3))
    t = unit([[0.0, 0.1, 1.0],  # closest to crystal 2 -> relevant -> rank 1
              [0.0, 1.0, 0.2]])  # closest to crystal 1 (not its own) -> crystal 0 is at rank 3
    m = retrieval_metrics(t, c, [{1, 2}, {0}], ks=(1, 2))
    assert m["text_to_crystal"]["R@1"] == 0.5
    assert m["text_to_crystal"]["MRR"] == pytest.approx((1 + 1 / 3) / 2)
    # random: text 0 has 2 relevant of 3, text 1 has 1 of 3
    assert m["random"]["R@1"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    # crystal -> text: crystal 0 ties both texts (pessimistic: rank 2), crystal 1 prefers text 1,
    # crystal 2 finds text 0 (shared with crystal 1) first
    r = retrieval_metrics(t, c, [{1, 2}, {0}], ks=(1,), return_ranks=True)["ranks"]
    assert r["crystal_to_text"].ranks.tolist() == [2, 2, 1]


def test_structure_with_two_texts_hit_by_either():
    c = unit(np.eye(4)[:, :4])
    # crystal 0 has texts 0 and 1; text 1 points at crystal 0, text 0 at crystal 3
    t = unit([[0, 0, 0.1, 1], [1, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    t2c = [{0}, {0}, {1}, {2}, {3}]
    r = retrieval_metrics(t, c, t2c, return_ranks=True)["ranks"]
    assert r["crystal_to_text"].ranks[0] == 1  # text 1 retrieved first: a hit for crystal 0
    # text 0 finds crystal 3, then crystal 2, then crystals 0 and 1 tied at 0 (pessimistic: 4)
    assert r["text_to_crystal"].ranks[0] == 4
    assert r["crystal_to_text"].ranks.tolist() == [1, 1, 1, 1]


def test_unique_texts_dedups_and_duplicate_texts_queried_once():
    texts, t2c = unique_texts([["A title", "quartz"], ["A title "], [], ["quartz", ""], ["B"]])
    assert texts == ["A title", "quartz", "B"]
    assert t2c == [{0, 1}, {0, 3}, {4}]
    c = rand_unit(5, seed=1)
    t = rand_unit(3, seed=2)
    m = retrieval_metrics(t, c, t2c)
    assert m["num_text_queries"] == 3
    assert m["num_crystal_queries"] == 4  # crystal 2 has no text: not a query, still in the pool
    assert m["pool_size"] == 5


def test_ties_are_pessimistic():
    c = np.ones((10, 4), dtype=np.float32) / 2
    m = retrieval_metrics(c[:3], c, [{0}, {1}, {2}])
    assert m["text_to_crystal"]["R@1"] == 0.0
    assert m["text_to_crystal"]["R@10"] == 1.0


def test_chunked_equals_unchunked_and_sparse_input():
    from scipy import sparse

    rng = np.random.default_rng(3)
    c = rand_unit(300, 16, seed=4)
    t = rand_unit(120, 16, seed=5)
    t2c = [set(rng.choice(300, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(120)]
    rel = relevance_matrix(t2c, 120, 300)
    full = first_relevant_ranks(t, c, rel, chunk_size=10_000)
    for chunk in (1, 7, 64):
        assert np.array_equal(first_relevant_ranks(t, c, rel, chunk_size=chunk), full)
    # brute force
    s = t @ c.T
    for q in range(120):
        best = max(s[q, j] for j in t2c[q])
        assert full[q] == 1 + sum(s[q, j] >= best for j in range(300) if j not in t2c[q])
    a = retrieval_metrics(t, c, t2c, chunk_size=13)
    b = retrieval_metrics(t, c, sparse.coo_matrix(rel), chunk_size=1000)
    assert a == b


def test_random_baseline_matches_monte_carlo():
    rng = np.random.default_rng(0)
    n, trials = 40, 20_000
    for r in (1, 3, 7):
        pos = np.argsort(rng.random((trials, n)), axis=1)[:, :r]  # positions of relevant items
        first = pos.min(axis=1) + 1
        for k in (1, 5, 10):
            assert random_hit_probability([r], n, k)[0] == pytest.approx(np.mean(first <= k), abs=0.01)
        assert random_expected_rr([r], n)[0] == pytest.approx(np.mean(1 / first), abs=0.01)
    assert random_hit_probability([1], 30_000, 1)[0] == pytest.approx(1 / 30_000, rel=1e-12)
    assert random_hit_probability([5], 5, 1)[0] == 1.0


def test_retrieval_ci():
    c = rand_unit(200, 8, seed=6)
    t = unit(c + 0.8 * rand_unit(200, 8, seed=7))
    m = retrieval_metrics(t, c, [{i} for i in range(200)], ci=True, n_boot=200)
    for d in ("text_to_crystal", "crystal_to_text"):
        for key in ("R@1", "R@5", "R@10", "MRR"):
            lo, hi = m["ci"][d][key]
            assert lo <= m[d][key] <= hi
    json.dumps(m)  # JSON-serialisable without return_ranks


def test_bootstrap_ci():
    v = np.random.default_rng(0).normal(size=2000)
    lo, hi = bootstrap_ci(v, n=500)
    assert lo < v.mean() < hi and hi - lo == pytest.approx(2 * 1.96 / np.sqrt(2000), rel=0.2)
    assert bootstrap_ci(v, n=200, seed=1) == bootstrap_ci(v, n=200, seed=1)
    lo2, hi2 = bootstrap_ci(v, stat=np.median, n=200)
    assert lo2 < np.median(v) < hi2
    lo3, hi3 = bootstrap_ci(np.stack([v, 2 * v], axis=1), n=200)
    assert lo3.shape == (2,) and lo3[1] == pytest.approx(2 * lo3[0])


# ---------------------------------------------------------------- zero-shot


def test_weighted_auc_ap_equal_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=300), 1)  # many ties
    y = rng.random(300) < 0.3
    w = np.bincount(rng.integers(0, 300, 300), minlength=300)
    idx = np.repeat(np.arange(300), w)
    assert weighted_roc_auc(s, y, w[None])[0] == pytest.approx(roc_auc_score(y[idx], s[idx]))
    assert weighted_average_precision(s, y, w[None])[0] == pytest.approx(
        average_precision_score(y[idx], s[idx]))


def test_zero_shot_separable_and_single_class():
    rng = np.random.default_rng(0)
    y = rng.random(100) < 0.4
    prompt = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    crystals = unit(np.c_[np.where(y, 1.0, -1.0), rng.normal(size=100), np.ones(100)])
    labels = {"sep": y, "none": np.zeros(100, bool)}
    z = zero_shot_metrics(crystals, prompt, labels, ci=True, n_boot=100)
    assert z["sep"]["roc_auc"] == 1.0 and z["sep"]["ap"] == 1.0
    assert z["sep"]["n_pos"] == y.sum() and z["sep"]["n_neg"] == 100 - y.sum()
    assert z["sep"]["ci"]["roc_auc"] == [1.0, 1.0]
    assert z["none"]["roc_auc"] is None and z["none"]["n_pos"] == 0 and z["none"]["n_neg"] == 100
    # a tiny label: resamples with one class are skipped
    few = np.zeros(100, bool)
    few[3] = True
    z2 = zero_shot_metrics(crystals, prompt[:1], {"few": few}, n_boot=200)
    assert 0 < z2["few"]["ci"]["n_used"] < 200


def test_property_labels_exclude_missing():
    table = mp40_table().copy()
    table.loc[:4, "metallic"] = None
    labels, valid = property_labels(table)
    assert labels["metallic"].sum() == (table["metallic"] == "metallic").sum()
    assert valid["metallic"].sum() == len(table) - 5
    assert labels["stable"].sum() == (table["stability"] == "stable").sum()
    assert "crystal_system=cubic" in labels and labels["crystal_system=cubic"].sum() == 152
    rng = np.random.default_rng(0)
    emb = rand_unit(len(table), 8, seed=1)
    z = zero_shot_metrics(emb, rng.normal(size=(2, 8)), {k: labels[k] for k in ("metallic", "stable")},
                          valid=valid, ci=False)
    assert z["metallic"]["n_pos"] + z["metallic"]["n_neg"] == len(table) - 5
    assert z["metallic"]["n_missing"] == 5
    # NaN-aware float labels work the same
    f = labels["metallic"].astype(float)
    f[~valid["metallic"]] = np.nan
    z2 = zero_shot_metrics(emb, rng.normal(size=(1, 8)), {"metallic": f}, ci=False)
    assert z2["metallic"]["n_missing"] == 5


# ---------------------------------------------------------------- keyword labels


@lru_cache
def amcsd_titles():
    from crystalclip.sources import amcsd
    from crystalclip.text.titles import clean_title

    con = amcsd.connect()
    try:
        return [clean_title(t) for (t,) in con.execute("SELECT pub_title FROM cif ORDER BY id")]
    finally:
        con.close()


def test_keyword_variants():
    titles = ["Antiferromagnetic order in X", "magnetite at 10 GPa", "Structure magnétique",
              "Superconductivity in MgB2", "Thiospinels under pressure", "Hydrous wadsleyite",
              "Clinopyroxenes", "compressibility of garnets", "leading to ferroelectricity",
              "A non-magnetite spinelle", "diamagnetism", "semiconducting perovskites", ""]
    lab = keyword_labels(titles)
    pos = {k: [t for t, b in zip(titles, v) if b] for k, v in lab.items()}
    assert pos["magnetic"] == ["Antiferromagnetic order in X", "Structure magnétique", "diamagnetism"]
    assert pos["high-pressure"] == ["magnetite at 10 GPa", "Thiospinels under pressure",
                                    "compressibility of garnets"]
    assert pos["superconductor"] == ["Superconductivity in MgB2"]
    assert pos["spinel"] == ["Thiospinels under pressure", "A non-magnetite spinelle"]
    assert pos["hydrous"] == ["Hydrous wadsleyite"]
    assert pos["pyroxene"] == ["Clinopyroxenes"]
    assert pos["garnet"] == ["compressibility of garnets"]
    assert pos["ferroelectric"] == ["leading to ferroelectricity"]
    assert pos["semiconductor"] == pos["perovskite"] == ["semiconducting perovskites"]


def test_keyword_labels_on_amcsd_titles():
    titles = amcsd_titles()
    lab = keyword_labels(titles)
    counts = {k: int(v.sum()) for k, v in lab.items()}
    for k, n in counts.items():
        assert n >= 20, (k, n)

    def hit(label, needle):
        return any(b for t, b in zip(titles, lab[label]) if needle in t)

    assert hit("magnetic", "magnetic")
    assert hit("superconductor", "superconductor")
    assert hit("high-pressure", "GPa")
    assert hit("perovskite", "perovskite")
    # "magnetite" alone (the mineral) is not magnetic
    for t, b in zip(titles, lab["magnetic"]):
        if re.search(r"magnetite", t, re.I) and not re.search(r"magnetic|magnetism|magnétique", t, re.I):
            assert not b, t


# ---------------------------------------------------------------- masking


def test_mask_examples():
    cases = {
        "SrTiO3 is a perovskite.": "material is a perovskite.",
        "Li2Fe(SO4)2 and Ca2(Al,Fe)[Si3AlO10](OH)2 here": "material and material here",
        'salt "NaCl" in water': 'salt "material" in water',
        "Strontium and oxygen with IRON": "material and material with material",
        "Stable H-phase structure of C S Zr2": "Stable H-phase structure of material",
        "C-rich Cr3 structure, S-type": "material-rich material structure, S-type",
        "KZnAs: featuring K, Zn, and As": "material: featuring material, material, and material",
        "CuSO4·5H2O and Fe2+ ions in W<sub>1</sub>O<sub>3</sub>": "material and material ions in material",
        "Fe-O system, C-C bonds": "material-material system, material-material bonds",
        "Cubic thallium (Tl) metal": "Cubic material metal",
    }
    for text, expected in cases.items():
        assert mask_formulas(text) == expected, text
    english = ("In the beginning, As a rule, I think He said No. At last Be quiet. BCC and FCC "
               "phases, gillespite I and II, Type B, tetrahedral TO4, 10 Pa, by the way, this leads to")
    assert mask_formulas(english) == english
    assert mask_formulas("") == ""


def _formula_regex(composition: str) -> re.Pattern:
    els = sorted((re.match(r"[A-Za-z]+", x).group(0) for x in composition.split()), key=len, reverse=True)
    el = "(?:" + "|".join(els) + ")"
    # any run of this material's symbols (with counts) that is not part of a longer word
    return re.compile(rf"(?<![A-Za-z])(?:{el}[\d.]*)+(?![a-z])")


def test_masking_removes_formulas_from_real_captions():
    table = mp40_table()
    n = leftover = 0
    changed_words = set()
    for comp, prompt in zip(table["composition"], table["prompt"]):
        pat = _formula_regex(comp)
        for cap in ast.literal_eval(prompt):
            n += 1
            masked = mask_formulas(cap)
            if pat.search(masked):
                leftover += 1
            # ordinary lowercase words survive (only element names may disappear)
            before = re.findall(r"\b[a-z]{3,}\b", cap)
            after = set(re.findall(r"\b[a-z]{3,}\b", masked))
            changed_words |= {w for w in before if w not in after}
            # the structure's own compact formula never survives
            compact = "".join(x.rstrip("1") if x[-1] == "1" and not x[-2].isdigit() else x
                              for x in comp.split())
            if len(comp.split()) >= 2:
                assert not re.search(rf"(?<![A-Za-z]){compact}(?![a-z0-9])", masked), (cap, masked)
    assert n == 5000
    assert leftover <= 5, leftover  # two known garbage captions ("LiPWMZn1P1S4", "In within Th2")
    from crystalclip.text.masking import ELEMENT_NAMES

    assert changed_words <= set(ELEMENT_NAMES) | {w + "s" for w in ELEMENT_NAMES} | {"sub", "sup"}, \
        changed_words - set(ELEMENT_NAMES)


# ---------------------------------------------------------------- plots


def test_plots_write_png(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random(80) < 0.5
    scores = {"a": y + rng.normal(size=80), "b": rng.normal(size=80), "none": rng.normal(size=80)}
    labels = {"a": y, "b": y, "none": np.zeros(80, bool)}
    p1 = plot_roc_curves(scores, labels, tmp_path / "roc.png")
    c = rand_unit(60, 8, seed=1)
    t = unit(c + 0.5 * rand_unit(60, 8, seed=2))
    m = retrieval_metrics(t, c, [{i} for i in range(60)], return_ranks=True)
    d = m["ranks"]["text_to_crystal"]
    p2 = plot_recall_at_k({"model": d.ranks, "baseline": np.arange(1, 61)}, d.n_relevant, d.pool_size,
                          tmp_path / "sub" / "recall.png")
    cats = [["cubic", "hexagonal", None][i % 3] for i in range(60)]
    p3 = plot_embedding_map(c, cats, tmp_path / "map.png", method="tsne")
    p4 = plot_embedding_map(c, cats, tmp_path / "map_pca.png", method="pca", max_points=30)
    for p in (p1, p2, p3, p4):
        assert p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG"
    assert not [f for f in tmp_path.rglob("*.tmp")]
