"""The pair dataset on disk: real sources, leakage-free splits, rejections that lose nothing."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from crystalclip.data.build import build_dataset
from crystalclip.data.splits import assign_splits, connected_groups
from crystalclip.graphs import GraphStore, build_graph
from crystalclip.structures import parse_cif

from .conftest import EDGE_CASES, MP40
from .test_structures import bad_files

COD_WITH_TITLES = ["codcif_1000000", "codcif_1516218", "codcif_1518592", "codcif_4318422", "codcif_7052868",
                   "codcif_9007991"]


@pytest.fixture(scope="module")
def amcsd_dataset(tmp_path_factory):
    """The whole AMCSD database (9,275 entries, ~15 s on 2 cores): the leakage test needs all of it."""
    out = tmp_path_factory.mktemp("amcsd") / "ds"
    summary = build_dataset(["amcsd"], out)
    return out, summary


def test_amcsd_splits_never_leak(amcsd_dataset):
    out, summary = amcsd_dataset
    table = pd.read_parquet(out / "pairs.parquet")
    assert summary["pairs"] == len(table) > 8000
    assert table["id"].is_unique
    for key in (table["publication_id"], table["formula"] + "|" + table["spacegroup_number"].astype(str)):
        assert table.groupby(key)["split"].nunique().max() == 1  # no publication / compound on two sides
    fractions = table["split"].value_counts(normalize=True)
    assert 0.75 < fractions["train"] < 0.85 and 0.07 < fractions["test"] < 0.13


def test_amcsd_rows_texts_and_columns(amcsd_dataset):
    out, summary = amcsd_dataset
    table = pd.read_parquet(out / "pairs.parquet").set_index("id")
    galena = table.loc["amcsd:3"]
    assert list(galena["texts"]) == ["The crystal structures of some metallic sulfides", "Galena"]
    assert galena["formula"] == "PbS" and galena["spacegroup_number"] == 225
    assert galena["journal"] == "American Mineralogist" and galena["year"] == 1925
    assert not any("_cod_database_code" in t or "\n" in t for texts in table["texts"] for t in texts)
    # the title column is the cleaned title too (it labels the zero-shot keywords), not the CIF's raw one
    assert table.loc["amcsd:9", "title"] == "The crystal structure of potassium dithionate, K2S2O6"
    titled = table["title"].fillna("") != ""
    assert (table.loc[titled, "title"] == table.loc[titled, "texts"].map(lambda t: t[0])).all()
    assert (~table["ordered"]).sum() > 1000  # disordered structures are kept, not dropped
    rejected = pd.read_csv(out / "rejected.csv")
    assert len(rejected) == summary["rejected"] == sum(summary["rejected_by_reason"].values())
    assert rejected["reason"].str.len().gt(0).all()
    assert summary["splits"] == table["split"].value_counts().to_dict()


def test_cached_graphs_equal_fresh_ones(amcsd_dataset):
    out, _ = amcsd_dataset
    table = pd.read_parquet(out / "pairs.parquet")
    store = GraphStore.open(out / "graphs")
    assert len(store) == len(table) and store.ids == table["id"].tolist()
    for i in range(0, len(table), 997):
        fresh = build_graph(parse_cif(table["cif"].iloc[i], table["id"].iloc[i])[0], store.config)
        cached = store[i]
        np.testing.assert_array_equal(cached.edge_dst, fresh.edge_dst)
        np.testing.assert_allclose(cached.edge_dist, fresh.edge_dist)
        np.testing.assert_array_equal(cached.species_z, fresh.species_z)


def test_mp40_both_files_merge_and_split_by_material(tmp_path):
    out = tmp_path / "mp40"
    summary = build_dataset([MP40 / "captions_1000.csv", MP40 / "captions_708.csv"], out, workers=1)
    table = pd.read_parquet(out / "pairs.parquet")
    assert summary["pairs"] == len(table) == 1000 + 708 - 24  # the 24 shared ids are merged, not rejected
    assert table["material_id"].is_unique
    assert table.groupby("material_id")["split"].nunique().max() == 1
    assert {"metallic", "stability", "crystal_system", "band_gap", "mineral"} <= set(table.columns)
    assert table["texts"].map(len).max() >= 5


def test_core_mof_texts_are_marked_generated(tmp_path):
    summary = build_dataset(["core-mof"], tmp_path / "mof", source_options={"limit": 12}, workers=1)
    table = pd.read_parquet(tmp_path / "mof" / "pairs.parquet")
    assert summary["pairs"] + summary["rejected"] == 12
    assert table["texts_generated"].all()
    assert table["texts"].map(lambda t: "metal-organic framework" in t[0]).all()
    assert {"LCD", "PLD", "Has_OMS", "DOI_public"} <= set(table.columns)


def _huge_cell_cif(title: str) -> str:
    """A real rock-salt cell repeated to 10,648 atoms, with a title so it pairs."""
    from pymatgen.core import Lattice, Structure

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nacl.make_supercell([11, 11, 11])
    return f"data_huge\n_publ_section_title '{title}'\n" + nacl.to(fmt="cif").split("\n", 1)[1]


def test_folder_with_good_and_bad_files(tmp_path):
    folder = tmp_path / "cifs"
    (folder / "nested").mkdir(parents=True)
    for name in COD_WITH_TITLES:
        (folder / "nested" / f"{name}.cif").write_bytes((EDGE_CASES / f"{name}.cif").read_bytes())
    good = (EDGE_CASES / "codcif_9007991.cif").read_text()
    expected_bad = bad_files(folder, good)
    (folder / "huge.cif").write_text(_huge_cell_cif("Rock salt, a large cell"))

    summary = build_dataset([folder], tmp_path / "ds")
    table = pd.read_parquet(tmp_path / "ds" / "pairs.parquet")
    rejected = pd.read_csv(tmp_path / "ds" / "rejected.csv")
    assert sorted(table["id"]) == sorted([f"nested/{n}" for n in COD_WITH_TITLES] + ["huge"])
    assert table.set_index("id").loc["huge", "num_sites"] == 10_648  # within the documented limit
    assert sorted(rejected["id"]) == sorted(name.removesuffix(".cif") for name in expected_bad)
    by_id = rejected.set_index("id")["reason"]
    for name, fragment in expected_bad.items():
        assert fragment in by_id[name.removesuffix(".cif")]
    assert summary["pairs"] == len(COD_WITH_TITLES) + 1
    titles = table.set_index("id")["texts"]
    assert list(titles["nested/codcif_9007991"]) == ["A new potassium niobate, KNb~5~O~13~"]


def test_rebuild_replaces_atomically_and_failures_leave_old_dataset(tmp_path):
    out = tmp_path / "ds"
    build_dataset([MP40 / "captions_708.csv"], out, source_options={"limit": 20}, workers=1)
    before = (out / "pairs.parquet").read_bytes()
    with pytest.raises(ValueError):
        build_dataset(["no-such-source"], out)
    assert (out / "pairs.parquet").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_splits_are_seeded_and_keep_components_whole():
    rng = np.random.default_rng(1)
    groups = [f"g{i}" for i in rng.integers(0, 1500, 2000)]
    compounds = [f"c{i}" for i in rng.integers(0, 20000, 2000)]
    components = connected_groups(groups, compounds)
    a, b = assign_splits(components, seed=3), assign_splits(components, seed=3)
    assert (a == b).all() and not (a == assign_splits(components, seed=4)).all()
    assert len(set(components)) > 500 and 0.05 < (a == "test").mean() < 0.15
    frame = pd.DataFrame({"g": groups, "c": compounds, "s": a})
    assert frame.groupby("g")["s"].nunique().max() == 1 and frame.groupby("c")["s"].nunique().max() == 1


def test_cli_build_json(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "crystalclip.cli", "data", "build", str(MP40 / "captions_708.csv"),
         "--out", str(tmp_path / "ds"), "--limit", "30", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["pairs"] == 30 and sum(summary["splits"].values()) == 30
    assert set(summary) >= {"pairs", "rejected", "rejected_by_reason", "splits"}
    bad = subprocess.run([sys.executable, "-m", "crystalclip.cli", "data", "build", "nope", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown source" in bad.stderr and "Traceback" not in bad.stderr
