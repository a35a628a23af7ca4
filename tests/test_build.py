"""Building from the Materials Project tables: described from the structure alone, resumable after
kill -9 (the result equals an uninterrupted build), titles joined without crossing splits."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crystalclip.data.dataset import Dataset
from crystalclip.text.masking import mask_formulas

from .conftest import SHARED

MP_CIFS = SHARED / "mp-cifs" / "mp_cifs_00.parquet"
ROWS = 240


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """A folder holding the first ROWS MP structures as two Parquet shards."""
    root = tmp_path_factory.mktemp("mp") / "tables"
    root.mkdir()
    first = pq.ParquetFile(MP_CIFS).read_row_group(0).slice(0, ROWS).to_pandas()
    first.iloc[: ROWS // 2].to_parquet(root / "part_0.parquet", index=False)
    first.iloc[ROWS // 2:].to_parquet(root / "part_1.parquet", index=False)
    return root


BUILD = """
import sys
from crystalclip.data import build
build.CHUNK = 40
build.build_dataset([sys.argv[1]], sys.argv[2], workers=1)
"""


def _build(tables, out, kill_after_chunks=None):
    process = subprocess.Popen([sys.executable, "-c", BUILD, str(tables), str(out)],
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    if kill_after_chunks is not None:
        work = out.with_name(f".{out.name}.building")
        deadline = time.time() + 240
        while len(list(work.glob("chunk-*/rows.parquet"))) < kill_after_chunks and time.time() < deadline:
            assert process.poll() is None, "the build ended before it could be killed"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert not (out / "pairs.parquet").exists() and len(list(work.glob("chunk-*/rows.parquet"))) >= kill_after_chunks
        return
    assert process.wait(timeout=600) == 0


def test_killed_build_resumes_and_equals_an_uninterrupted_one(tables, tmp_path):
    _build(tables, tmp_path / "whole")
    _build(tables, tmp_path / "resumed", kill_after_chunks=2)
    _build(tables, tmp_path / "resumed")
    whole, resumed = (pd.read_parquet(tmp_path / d / "pairs.parquet") for d in ("whole", "resumed"))
    pd.testing.assert_frame_equal(whole, resumed)
    for name in ("edge_src", "edge_dst", "edge_dist", "species_z", "edge_offsets"):
        np.testing.assert_array_equal(np.load(tmp_path / "whole" / "graphs" / f"{name}.npy"),
                                      np.load(tmp_path / "resumed" / "graphs" / f"{name}.npy"))
    assert not (tmp_path / ".resumed.building").exists()  # the work directory goes once assembled


def test_mp_rows_are_described_from_the_structure_with_formula_free_twins(tables, tmp_path):
    _build(tables, tmp_path / "data")
    data = Dataset(tmp_path / "data")
    table = data.table
    assert len(table) == ROWS and set(table["source"]) == {"mp"}
    assert table["url"].str.startswith("https://next-gen.materialsproject.org/materials/mp-").all()
    import spglib

    for row in range(0, ROWS, 24):
        crystal = data.crystal(row)
        found = spglib.get_symmetry_dataset((crystal.lattice, crystal.frac_coords,
                                             [max(s, key=s.get) for s in crystal.species]), symprec=0.1)
        text, free = data.column("texts", [row])[0][0], data.column("texts_formula_free", [row])[0][0]
        assert f"(No. {found.number})" in text and table["crystal_system"].iat[row] in text
        assert mask_formulas(free) == free and table["formula"].iat[row] not in free
    assert table["structure_type"].notna().mean() > 0.2  # the prototype matcher names many of these binaries
    summary = json.loads((tmp_path / "data" / "summary.json").read_text())
    assert summary["pairs"] == ROWS and summary["structure_types_matched"] == table["structure_type"].notna().sum()


def test_titles_join_by_formula_and_never_span_two_splits(tables, tmp_path):
    from crystalclip.derive import dataset_titles

    _build(tables, tmp_path / "data")
    data = Dataset(tmp_path / "data")
    formulas = data.table["formula"]
    common = formulas.value_counts().index[0]  # a formula several structures share
    titles = pd.DataFrame({"arxiv_id": ["1", "2", "3"], "title": [
        f"Pressure-induced phases of {common}", "BCS theory of the AC Josephson effect in US and In",
        "Nothing chemical here"]})
    titles.to_csv(tmp_path / "titles.csv", index=False)
    summary = dataset_titles(tmp_path / "data", tmp_path / "titles.csv")
    joined = data.read_texts("titles")
    assert summary["titles_matched"] == 1 and all(t == [titles["title"][0]] for t in joined.values())
    rows = data.table[data.table["id"].isin(joined)]
    assert set(rows["formula"]) == {common} and rows["split"].nunique() == 1
    dropped = (formulas == common).sum() - len(rows)
    assert summary["pairs_dropped_across_splits"] == dropped


def test_short_facts_name_the_type_of_every_typed_structure(tables, tmp_path):
    from crystalclip.derive import dataset_facts
    from crystalclip.text.short_facts import type_name

    _build(tables, tmp_path / "data")
    data = Dataset(tmp_path / "data")
    summary = dataset_facts(tmp_path / "data")
    facts = data.read_texts("facts")
    typed = data.table[data.table["structure_type"].notna()]
    assert len(typed) >= 10 and set(facts) == set(typed["id"]) and summary["written"] == len(typed)
    for id_, kind, system in zip(typed["id"], typed["structure_type"], typed["crystal_system"]):
        (text,) = facts[id_]
        assert type_name(kind) in text and len(text.split()) <= 10
    assert dataset_facts(tmp_path / "data")["distinct"] == summary["distinct"]  # deterministic
    assert data.read_texts("facts") == facts
    pool = data.text_pool(["pairs", "facts"], formula_free=True)
    row = int(np.flatnonzero(data.table["structure_type"].notna())[0])
    assert len(pool.row_texts[row]) == 2  # its description and its short fact
