"""The cif-table source: folders of Parquet / CSV tables with material_id and cif columns (mp-cifs)."""
from functools import lru_cache

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crystalclip.sources import Source, cif_table
from crystalclip.sources.base import Entry, Rejected
from crystalclip.structures import parse_cif
from crystalclip.structures.bonds import read_cif_bonds
from crystalclip.text.describe import describe

from .conftest import SHARED

SHARD = SHARED / "mp-cifs" / "mp_cifs_00.parquet"


@lru_cache
def _rows(n: int = 50) -> pa.Table:
    """The first n rows of the first mp-cifs shard (one batch, not the whole file)."""
    batch = next(pq.ParquetFile(SHARD).iter_batches(batch_size=n, columns=["material_id", "cif"]))
    return pa.Table.from_batches([batch])


@pytest.fixture
def shards(tmp_path):
    """The 50 rows as two Parquet shards (30 + 20), zstd like the real ones."""
    folder = tmp_path / "mp-cifs"
    folder.mkdir()
    table = _rows()
    pq.write_table(table.slice(0, 30), folder / "part_00.parquet", compression="zstd")
    pq.write_table(table.slice(30), folder / "part_01.parquet", compression="zstd")
    return folder


def test_a_folder_of_tables_is_recognised(shards, tmp_path):
    assert cif_table.is_cif_table_dir(shards)
    assert not cif_table.is_cif_table_dir(shards / "part_00.parquet")  # a file, not a folder
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not cif_table.is_cif_table_dir(empty)
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(pa.table({"material_id": ["mp-1"], "text": ["x"]}), other / "a.parquet")
    assert not cif_table.is_cif_table_dir(other)  # no cif column
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    (cifs / "a.cif").write_text(_rows().column("cif")[0].as_py())
    assert not cif_table.is_cif_table_dir(cifs)  # a folder of CIF files is the cif-folder source
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.parquet").write_bytes(b"not parquet")
    assert not cif_table.is_cif_table_dir(broken)


def test_entries_keep_ids_and_link_to_the_materials_project(shards):
    entries = list(cif_table.iter_entries(root=shards))
    table = _rows()
    assert [e.id for e in entries] == table.column("material_id").to_pylist()
    assert all(isinstance(e, Entry) for e in entries)
    first = entries[0]
    assert first.id.startswith("mp-") and first.source == "mp" and first.group == first.id
    assert first.texts == [] and first.texts_generated
    assert first.columns == {"material_id": first.id, "url": f"https://next-gen.materialsproject.org/materials/{first.id}"}
    assert first.cif == table.column("cif")[0].as_py()
    assert first.path.endswith("part_00.parquet:row 1") and entries[30].path.endswith("part_01.parquet:row 1")


def test_limit_takes_the_first_rows_across_shards(shards):
    ids = _rows().column("material_id").to_pylist()
    assert [e.id for e in cif_table.iter_entries(root=shards, limit=35)] == ids[:35]
    assert [e.id for e in cif_table.iter_entries(root=shards, limit=0)] == []
    assert [e.id for e in cif_table.iter_entries(root=shards, batch_size=7)] == ids  # batch size changes nothing


def test_count_reads_only_the_parquet_footers(shards, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("count must not read rows")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read", refuse)
    monkeypatch.setattr(pq, "read_table", refuse)
    assert cif_table.count(root=shards) == 50
    assert cif_table.count(root=shards, limit=35) == 35
    assert cif_table.count(root=shards, limit=500) == 50


def test_rows_are_read_one_batch_at_a_time(shards):
    sizes = [len(ids) for ids, _ in cif_table._batches(shards / "part_00.parquet", "material_id", "cif", 8)]
    assert sizes == [8, 8, 8, 6]
    lazy = cif_table.iter_entries(root=shards, batch_size=4)
    assert next(lazy).id == _rows().column("material_id")[0].as_py()  # no need to read the rest first


def test_other_ids_and_bad_rows(tmp_path):
    cif = _rows().column("cif")[0].as_py()
    folder = tmp_path / "t"
    folder.mkdir()
    pq.write_table(pa.table({"material_id": ["abc-1", "", "abc-1", "abc-2", "mvc-7", "abc-3"],
                             "cif": [cif, cif, cif, " ", cif, None]}), folder / "t.parquet")
    out = list(cif_table.iter_entries(root=folder))
    assert isinstance(out[0], Entry) and out[0].source == "cif-table" and out[0].columns["url"] is None
    assert isinstance(out[1], Rejected) and "row 2: empty material_id" in out[1].reason
    assert isinstance(out[2], Rejected) and "duplicate id 'abc-1'" in out[2].reason
    assert isinstance(out[3], Rejected) and "row 4: empty cif cell" in out[3].reason
    assert out[4].source == "mp" and out[4].columns["url"].endswith("/materials/mvc-7")
    assert isinstance(out[5], Rejected) and "row 6: empty cif cell" in out[5].reason
    with pytest.raises(ValueError, match="needs the folder"):
        list(cif_table.iter_entries())


def test_csv_tables_work_the_same(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    frame = _rows().to_pandas()
    frame.head(30).assign(extra=1).to_csv(folder / "a.csv", index=False)
    frame.iloc[30:].to_csv(folder / "b.csv.gz", index=False)
    assert cif_table.is_cif_table_dir(folder)
    entries = list(cif_table.iter_entries(root=folder, batch_size=5))
    assert [e.id for e in entries] == frame["material_id"].tolist()
    assert entries[7].cif == frame["cif"][7]  # multi-line CIF cells survive
    assert cif_table.count(root=folder) == 50 and cif_table.count(root=folder, limit=10) == 10


def test_entries_parse_and_describe_with_their_bonds(shards):
    source = Source("cif-table", cif_table, str(shards), root=shards, limit=10)
    assert source.count() == 10
    for entry in source.iter_entries():
        crystal = parse_cif(entry.cif, entry.id)[0]
        assert crystal.id == entry.id
        bonds = read_cif_bonds(entry.cif, crystal)
        text = describe(crystal, seed=0, bonds=bonds)
        assert crystal.reduced_formula() in text


def test_index_reads_a_folder_of_tables_like_data_build(shards, tmp_path):
    """`crystalclip index DIR` sees the same structures as `data build DIR`: every row of every table
    with a cif column (a table without one is not a structure file); a folder of none is an error."""
    import json
    import subprocess
    import sys

    from crystalclip.structures import structure_files

    pq.write_table(pa.table({"material_id": ["mp-1"], "note": ["x"]}), shards / "ids.parquet")
    assert [p.name for p in structure_files(shards)] == ["part_00.parquet", "part_01.parquet"]
    out = subprocess.run([sys.executable, "-m", "crystalclip.cli", "index", str(shards), "--out", str(tmp_path / "ix"),
                          "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["indexed"] + report["failed"] == 50 and report["indexed"] >= 48
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "readme.csv").write_text("material_id,note\nmp-1,x\n")
    out = subprocess.run([sys.executable, "-m", "crystalclip.cli", "index", str(empty), "--out", str(tmp_path / "iy")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "no structure files" in " ".join(out.stderr.split()) and not (tmp_path / "iy").exists()
