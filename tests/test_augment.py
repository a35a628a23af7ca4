"""Augmentations on real mp40 structures and captions: bounded, valid, reproducible, non-destructive."""
import ast
import copy

import numpy as np
import pytest

from crystalclip.augment import (augment_crystal, augment_text, displace, drop_and_shuffle_sentences,
                                 mask_tokens, min_distance, split_sentences, strain)
from crystalclip.graphs import MIN_DISTANCE, build_graph
from crystalclip.structures import Crystal
from crystalclip.structures.cif import parse_cif
from tests.conftest import mp40_table

MASK = "[MASK]"


@pytest.fixture(scope="module")
def crystals() -> list[Crystal]:
    table = mp40_table().iloc[::50]  # 20 structures, 1 to ~100 sites
    return [parse_cif(cif, mid)[0] for cif, mid in zip(table["cif"], table["material_id"])]


@pytest.fixture(scope="module")
def captions() -> list[str]:
    """Each mp40 row's five captions as one multi-sentence text."""
    return [" ".join(s.strip() for s in ast.literal_eval(p)) for p in mp40_table()["prompt"][:20]]


def shifts(before: Crystal, after: Crystal) -> np.ndarray:
    """Cartesian displacement of every site, through the periodic boundary."""
    d = after.frac_coords - before.frac_coords
    return (d - np.round(d)) @ before.lattice


def test_min_distance_against_brute_force(crystals):
    for crystal in crystals[:5]:
        frac = crystal.frac_coords
        images = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
        best = np.inf
        for a in range(len(frac)):
            for b in range(len(frac)):
                d = np.linalg.norm((frac[b] - frac[a] + images) @ crystal.lattice, axis=1)
                best = min(best, d[d > 1e-9].min())
        assert min_distance(crystal) == pytest.approx(best)


def test_displace_is_bounded_and_keeps_a_valid_graph(crystals):
    rng = np.random.default_rng(0)
    largest = 0.0
    for crystal in crystals:
        before = copy.deepcopy(crystal)
        dmin = min_distance(crystal)
        moved = displace(crystal, rng)
        length = np.linalg.norm(shifts(crystal, moved), axis=1)
        assert length.max() <= 0.5 * dmin + 1e-9  # CLaC: up to 0.5 d_min ...
        assert length.max() < (dmin - MIN_DISTANCE) / 2  # ... and never closer than MIN_DISTANCE
        largest = max(largest, length.max() / dmin)
        assert min_distance(moved) >= MIN_DISTANCE
        assert (moved.frac_coords >= 0).all() and (moved.frac_coords < 1).all()
        np.testing.assert_array_equal(moved.lattice, crystal.lattice)
        assert moved.species == crystal.species and moved.species is not crystal.species
        assert build_graph(moved).num_sites == len(crystal)
        # the input is untouched
        np.testing.assert_array_equal(crystal.frac_coords, before.frac_coords)
        np.testing.assert_array_equal(crystal.lattice, before.lattice)
    assert largest > 0.3  # the displacements are of CLaC's size, not vanishing


def test_displace_cap_holds_when_the_fraction_is_large():
    """Two atoms 1 Å apart: a cap of max_fraction × d_min = 1 Å could make them meet; the clamp
    keeps every move below (1 - MIN_DISTANCE) / 2."""
    pair = Crystal("pair", np.diag([12.0, 12.0, 12.0]), np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5 + 1 / 12]]),
                   [{8: 1.0}, {8: 1.0}])
    rng = np.random.default_rng(1)
    lengths, distances = [], []
    for _ in range(300):
        moved = displace(pair, rng, max_fraction=1.0)
        lengths.append(np.linalg.norm(shifts(pair, moved), axis=1).max())
        distances.append(min_distance(moved))
    assert max(lengths) < (1.0 - MIN_DISTANCE) / 2
    assert max(lengths) > 0.4  # the cap is reached, not undershot
    assert min(distances) >= MIN_DISTANCE
    np.testing.assert_allclose(displace(pair, rng, max_fraction=0.0).frac_coords, pair.frac_coords)


def test_strain_is_symmetric_and_bounded(crystals):
    rng = np.random.default_rng(2)
    strains = []
    for crystal in crystals:
        before = copy.deepcopy(crystal)
        strained = strain(crystal, rng)
        e = np.linalg.solve(crystal.lattice, strained.lattice) - np.eye(3)  # lattice @ (I + E)
        np.testing.assert_allclose(e, e.T, atol=1e-12)
        assert np.abs(e).max() <= 0.05 + 1e-12
        strains.append(e)
        ratio = abs(np.linalg.det(strained.lattice) / np.linalg.det(crystal.lattice))
        assert 0.85 ** 3 <= ratio <= 1.15 ** 3  # |eigenvalues of E| <= 3 × 0.05
        np.testing.assert_array_equal(strained.frac_coords, crystal.frac_coords)
        assert build_graph(strained).num_sites == len(crystal)
        np.testing.assert_array_equal(crystal.lattice, before.lattice)
    # the entries are spread over the whole range, off-diagonal ones too
    entries = np.abs(np.array(strains))
    assert entries.max() > 0.045 and entries[:, 0, 1].max() > 0.03


def test_augmentations_are_reproducible(crystals, captions):
    crystal, text = crystals[3], captions[3]
    a = augment_crystal(crystal, np.random.default_rng(7))
    b = augment_crystal(crystal, np.random.default_rng(7))
    c = augment_crystal(crystal, np.random.default_rng(8))
    np.testing.assert_array_equal(a.frac_coords, b.frac_coords)
    np.testing.assert_array_equal(a.lattice, b.lattice)
    assert not np.allclose(a.lattice, c.lattice) and not np.allclose(a.frac_coords, c.frac_coords)
    assert a.id == crystal.id and a.metadata == crystal.metadata and a.metadata is not crystal.metadata
    assert augment_text(text, np.random.default_rng(7), MASK) == augment_text(text, np.random.default_rng(7), MASK)
    outputs = {augment_text(text, np.random.default_rng(seed), MASK) for seed in range(10)}
    assert len(outputs) == 10


def test_augmented_crystals_still_build_graphs(crystals):
    rng = np.random.default_rng(3)
    for crystal in crystals:
        for _ in range(3):
            graph = build_graph(augment_crystal(crystal, rng))
            assert graph.num_sites == len(crystal) and graph.num_edges > 0


def test_split_sentences():
    text = "Cubic NaCl, e.g. rock salt. Its a = 5.64 Å! Is it stable? Yes."
    assert split_sentences(text) == ["Cubic NaCl, e.g. rock salt.", "Its a = 5.64 Å!", "Is it stable?", "Yes."]


def test_drop_and_shuffle_sentences(captions):
    rng = np.random.default_rng(4)
    reordered = 0
    for text in captions:
        sentences = split_sentences(text)
        assert len(sentences) == 5
        out = split_sentences(drop_and_shuffle_sentences(text, rng))
        assert out and len(set(out)) == len(out) and set(out) <= set(sentences)
        kept = [s for s in sentences if s in out]
        reordered += out != kept
        everything = split_sentences(drop_and_shuffle_sentences(text, rng, drop_prob=0.0))
        assert sorted(everything) == sorted(sentences)
        assert len(split_sentences(drop_and_shuffle_sentences(text, rng, drop_prob=1.0))) == 1  # never empty
    assert reordered >= 10  # shuffled, not just subsampled
    lengths = [len(split_sentences(drop_and_shuffle_sentences(captions[0], rng))) for _ in range(400)]
    assert np.mean(lengths) == pytest.approx(5 * 0.8, abs=0.2)  # ~drop_prob of them dropped
    single = "  Cubic NaCl, e.g. rock salt.\n"
    assert drop_and_shuffle_sentences(single, rng, drop_prob=1.0) == single


def test_mask_tokens(captions):
    rng = np.random.default_rng(5)
    for text in captions:
        words = text.split()
        out = mask_tokens(text, rng, MASK)
        masked = out.split()
        assert len(masked) == len(words)
        assert sum(w == MASK for w in masked) == max(1, round(0.15 * len(words)))
        assert all(m == w for m, w in zip(masked, words) if m != MASK)
    assert mask_tokens("Perovskite", rng, MASK) == "Perovskite"  # one word: nothing to keep
    assert mask_tokens("cubic perovskite", rng, MASK).count(MASK) == 1  # two words: at least one
    assert mask_tokens("cubic perovskite", rng, MASK, fraction=0.0) == "cubic perovskite"
    spaced = mask_tokens("a\nb  c\td e f g h i j", rng, "<mask>", fraction=0.5)
    assert spaced.count("<mask>") == 5
    assert [c for c in spaced if c.isspace()] == list("\n  \t      ")  # whitespace kept


def test_augment_text_never_empty(captions):
    rng = np.random.default_rng(6)
    for text in captions:
        for _ in range(5):
            out = augment_text(text, rng, MASK, drop_prob=0.9, mask_fraction=0.5)
            assert out.strip() and out.replace(MASK, "").strip()
