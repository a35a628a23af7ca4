"""The ready corpus inside the package: every structure of the full dataset (all Materials Project
structures of ../shared/data/mp-cifs, AMCSD, CoRE MOF 2019, mp40) with the default model's embeddings
stored as float16, so that a first search loads files and embeds nothing.

    crystalclip data corpus data/all180             # regenerate after the default model changes

`src/crystalclip/embedded/corpus/` is an `Index` directory (faiss.index: faiss fp16, 512 bytes a
structure; meta.parquet; index.json, which records the model, and the stored vectors' recall@10 against
float32 on real text queries, beside what 8-bit SQ8 would have scored) plus structures-NN.parquet: per structure its arrays (structures/arrays.py), its
link-ready reference and its paired texts, read only when a structure is opened (details, CIF).
Every stored vector is the model's embedding of the dataset's structure, from the dataset's graphs
and caches (nothing is featurized twice); the stored arrays hold that structure to 0.0002 Å (arrays.py).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import NotFound
from ..fileio import atomic_dir, atomic_path
from ..index import INFO_FILE, Index
from ..models.clip import model_sha256
from ..structures.arrays import from_arrays, to_arrays
from ..structures.symmetry import crystal_system

SHARD_ROWS = 50_000  # structures per structures-NN.parquet (each file stays far below 100 MB)
PART_ROWS = 4096  # structures embedded per resumable part while building
TEXT_CHARS = 160  # the one line of text a search result carries; the full texts are in the shards
RECALL_QUERIES = 1000  # held-out texts embedded as queries for the stored-vs-float32 recall@10
MODEL_NAME = "default"
STORED_AS = "fp16"  # sq8 (half the bytes) measured recall@10 0.982 against float32 on 1,000 test texts: below 0.99
ARRAY_COLUMNS = ["lattice", "frac", "z", "site", "occupancy"]


def corpus_dir() -> Path:
    return Path(str(resources.files("crystalclip"))) / "embedded" / "corpus"


def available(directory: Path | None = None) -> bool:
    return ((directory or corpus_dir()) / INFO_FILE).is_file()


def open_corpus(model, directory: Path | None = None) -> Index:
    """The packaged corpus as an Index with `model` attached; ModelMismatch unless it made the vectors."""
    directory = directory or corpus_dir()
    if not available(directory):
        raise NotFound(f"no corpus at {directory}: build it with `crystalclip data corpus DATASET`")
    index = Index.load(directory)
    index.check_model(model)
    index.model = model
    return index


class Structures:
    """The corpus's structures by id, read shard by shard on first use (a search never reads them)."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or corpus_dir()
        info = json.loads((self.directory / INFO_FILE).read_text())
        self.shards = info["corpus"]["shards"]
        self._rows: dict[str, int] | None = None
        self._tables: dict[int, pa.Table] = {}

    def row(self, structure_id: str) -> int | None:
        if self._rows is None:
            ids = pd.read_parquet(self.directory / "meta.parquet", columns=["id"])["id"].astype(str)
            self._rows = {}
            for i, one in enumerate(ids):
                self._rows.setdefault(one, i)
        return self._rows.get(structure_id)

    def record(self, row: int) -> dict:
        shard, offset = divmod(row, SHARD_ROWS)
        if shard not in self._tables:
            self._tables[shard] = pq.read_table(self.directory / self.shards[shard])
        return self._tables[shard].slice(offset, 1).to_pylist()[0]

    def crystal(self, record: dict):
        return from_arrays(record["id"], *(record[c] for c in ARRAY_COLUMNS))


# ---- building ----


def build_corpus(data_dir, out: Path | None = None, model=None, progress=None) -> dict:
    """Embed every row of a dataset into a corpus directory (default: the packaged one), resumably:
    parts of PART_ROWS structures are kept in `.corpus.building/` until the corpus is assembled."""
    from ..api import load
    from ..data.dataset import Dataset

    data = Dataset(data_dir)
    model = model or load(MODEL_NAME)
    out = Path(out or corpus_dir())
    key = hashlib.sha256(model_sha256(model.path).encode() + (data.directory / "summary.json").read_bytes()).hexdigest()[:16]
    work = out.parent / f".{out.name}.building"
    if work.exists() and (work / "key").read_text() != key:
        shutil.rmtree(work)  # another model or dataset: its parts are not ours
    work.mkdir(parents=True, exist_ok=True)
    (work / "key").write_text(key)
    table = data.table
    from ..encoding import row_inputs

    inputs = row_inputs(model.clip, data)
    parts = range(0, len(table), PART_ROWS)
    for number, start in enumerate(parts):
        path = work / f"part-{number:05d}.parquet"
        if not path.is_file():
            _embed_part(data, model, range(start, min(start + PART_ROWS, len(table))), path, inputs)
        if progress:
            progress(min(start + PART_ROWS, len(table)), len(table))
    summary = _assemble(data, model, sorted(work.glob("part-*.parquet")), out)
    shutil.rmtree(work)
    return summary


def _embed_part(data, model, rows: range, path: Path, inputs: dict) -> None:
    from ..encoding import embed_rows

    records, failed = [], []
    for row in rows:
        try:
            records.append({"row": row, **to_arrays(data.crystal(row))})
        except ValueError as error:  # BadInput / StructureError: the dataset's CIF no longer reads
            failed.append((str(data.table["id"].iat[row]), str(error)))
    frame = pd.DataFrame(records, columns=["row", *ARRAY_COLUMNS])
    frame["embedding"] = list(embed_rows(model.clip, rows=frame["row"].to_numpy(), **inputs))
    failures = pd.DataFrame(failed, columns=["id", "reason"])
    with atomic_path(path.with_suffix(".failed.csv")) as tmp:
        failures.to_csv(tmp, index=False)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _assemble(data, model, parts: list[Path], out: Path) -> dict:
    frames = [pd.read_parquet(p) for p in parts]
    frame = pd.concat(frames, ignore_index=True)
    failed = pd.concat([pd.read_csv(p.with_suffix(".failed.csv"), dtype=str) for p in parts], ignore_index=True)
    vectors = np.stack(frame.pop("embedding").to_numpy()).astype(np.float32)
    rows = frame.pop("row").to_numpy()
    source = data.table.iloc[rows].reset_index(drop=True)
    flat = Index.empty(model)
    flat.add_vectors(vectors, [meta_row(r) for r in source.to_dict("records")])
    queries, query_kind = _held_out_queries(data, model)
    index = flat.compressed(STORED_AS, queries, query_kind)
    index.info["ann"]["sq8_recall_at_10"] = flat.compressed("sq8", queries, query_kind).recall_at_10  # the road not taken
    from ..api import packaged_model_path

    if Path(model.path).resolve() == packaged_model_path(MODEL_NAME).resolve():
        index.info["model"]["path"] = MODEL_NAME  # the packaged name, not a path on the building machine
    index.failed = failed.rename(columns={"id": "path"})
    structures = pd.concat([source[["id"]], frame[ARRAY_COLUMNS]], axis=1)
    structures["link"], structures["reference"] = zip(*(_reference(r) for r in source.to_dict("records")))
    structures["texts"] = source["texts"].map(list)
    shards = []
    with atomic_dir(out) as tmp:
        for number, start in enumerate(range(0, len(structures), SHARD_ROWS)):
            name = f"structures-{number:02d}.parquet"
            pq.write_table(pa.Table.from_pandas(structures.iloc[start:start + SHARD_ROWS], preserve_index=False),
                           tmp / name, compression="zstd", compression_level=19)
            shards.append(name)
        index.info["corpus"] = {"shards": shards, "shard_rows": SHARD_ROWS, "dataset": data.summary,
                                "by_source": source["source"].value_counts().to_dict()}
        index.save(tmp)
    return {"structures": index.count, "failed": len(failed), "bytes": sum(p.stat().st_size for p in out.iterdir()),
            **index.info["ann"]}


def meta_row(row: dict) -> dict:
    """A dataset row as index metadata, its first text cut to one line."""
    texts = list(row["texts"])
    text = " ".join(texts[0].split()) if texts else None
    if text and len(text) > TEXT_CHARS:
        text = text[: TEXT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    number = int(row["spacegroup_number"]) if pd.notna(row["spacegroup_number"]) else None
    return {"id": str(row["id"]), "source": row["source"], "path": None, "formula": row["formula"],
            "elements": list(row["elements"]), "spacegroup_number": number, "crystal_system": crystal_system(number),
            "text": text}


def _reference(row: dict) -> tuple[str | None, str | None]:
    """(a link out, a citation line) per source: the MP page, the AMCSD code, CoRE MOF's DOI or CSD refcode."""
    structure_id = str(row["id"])
    if structure_id.startswith("mp-"):
        return f"https://next-gen.materialsproject.org/materials/{structure_id}", f"Materials Project {structure_id}"
    if row["source"] == "amcsd" and pd.notna(row.get("amcsd_id")):
        cited = ", ".join(str(row[c]) for c in ("title", "journal") if pd.notna(row.get(c)))
        year = f" ({int(row['year'])})" if pd.notna(row.get("year")) else ""
        return None, f"AMCSD {int(row['amcsd_id']):07d}: {cited}{year}"
    if row["source"] == "core-mof":
        refcode = structure_id.removeprefix("core-mof:").removesuffix("_clean")
        doi = row.get("DOI_public")
        if isinstance(doi, str) and doi:
            return f"https://doi.org/{doi}", f"CoRE MOF 2019 {refcode}, DOI {doi}"
        return (f"https://www.ccdc.cam.ac.uk/structures/Search?Ccdcid={refcode}",
                f"CoRE MOF 2019, CSD refcode {refcode}")
    return None, None


def _held_out_queries(data, model) -> tuple[np.ndarray, str]:
    """Real text queries: one own text from each of RECALL_QUERIES test-split structures, embedded."""
    rng = np.random.default_rng(0)
    rows = data.rows("test")
    rows = rows[data.table["texts"].iloc[rows].map(len).to_numpy() > 0]
    pick = np.sort(rng.choice(rows, size=min(RECALL_QUERIES, len(rows)), replace=False))
    texts = [str(data.table["texts"].iat[r][0]) for r in pick]
    return model.encode_texts(texts), f"{len(texts)} test-split texts of the dataset"
