"""The ready corpus inside the package: every structure of the full dataset (all Materials Project
structures of ../shared/data/mp-cifs, AMCSD, CoRE MOF 2019, mp40) with the default model's embeddings
stored as float16, so that a first search loads files and embeds nothing.

    crystalclip data corpus                         # re-embed the stored structures after the default model changes
    crystalclip data corpus data/all180             # or make the corpus again from its dataset

`src/crystalclip/embedded/corpus/` is an `Index` directory (faiss.index: faiss fp16, 512 bytes a
structure; meta.parquet; index.json, which records the model, and the stored vectors' recall@10 against
float32 on real text queries, beside what 8-bit SQ8 would have scored) plus structures-NN.parquet: per structure its arrays (structures/arrays.py), its
link-ready reference and its paired texts, read only when a structure is opened (details, CIF).
Every stored vector is the model's embedding of the stored arrays (which hold the dataset's structure
to 0.0002 Å, arrays.py), so that re-embedding a shipped structure gives back its shipped vector.
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
from ..structures import StructureError
from ..structures.arrays import from_arrays, to_arrays
from ..structures.symmetry import crystal_system

SHARD_ROWS = 50_000  # structures per structures-NN.parquet (each file stays far below 100 MB)
PART_ROWS = 4096  # structures embedded per resumable part while building
TEXT_CHARS = 160  # the one line of text a search result carries; the full texts are in the shards
RECALL_QUERIES = 1000  # stored texts embedded as queries for the stored-vs-float32 recall@10
MODEL_NAME = "default"
STORED_AS = "fp16"  # sq8 (half the bytes) measured recall@10 0.98 against float32 on 1,000 real texts: below 0.99
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
        self.shards, self.count = info["corpus"]["shards"], info["count"]
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
        return self._table(shard).slice(offset, 1).to_pylist()[0]

    @staticmethod
    def crystal(record: dict):
        """The crystal of one stored row (an `id` and ARRAY_COLUMNS), as it is embedded."""
        return from_arrays(record["id"], *(record[c] for c in ARRAY_COLUMNS))

    def arrays(self, rows: range) -> pd.DataFrame:
        """Consecutive rows' ids and arrays (with their row numbers), read from the shards."""
        pieces, row = [], rows.start
        while row < rows.stop:
            shard, offset = divmod(row, SHARD_ROWS)
            n = min(rows.stop - row, SHARD_ROWS - offset)
            pieces.append(self._table(shard).slice(offset, n).select(["id", *ARRAY_COLUMNS]).to_pandas())
            row += n
        frame = pd.concat(pieces, ignore_index=True)
        frame.insert(0, "row", np.arange(rows.start, rows.stop))
        return frame

    def texts(self) -> pd.Series:
        """Every structure's paired texts, in row order."""
        return pd.concat([self._table(i).column("texts").to_pandas() for i in range(len(self.shards))],
                         ignore_index=True)

    def _table(self, shard: int) -> pa.Table:
        if shard not in self._tables:
            self._tables[shard] = pq.read_table(self.directory / self.shards[shard])
        return self._tables[shard]


# ---- building ----


def build_corpus(source, out: Path | None = None, model=None, progress=None, workers: int = 1) -> dict:
    """Embed a corpus, resumably (parts of PART_ROWS structures wait in `.NAME.building/` until it is
    assembled). `source` is a dataset directory, whose structures, texts and links become the corpus, or
    a corpus directory, whose stored structures are embedded again as they are (after the default model
    changes: only faiss.index and index.json are rewritten). Either way every vector is the model's
    embedding of the stored arrays, so re-embedding a shipped structure gives its shipped vector."""
    from ..api import load
    from ..data.dataset import Dataset

    model = model or load(MODEL_NAME)
    source, out = Path(source), Path(out or corpus_dir())
    stored = Structures(source) if available(source) else None
    data = None if stored else Dataset(source)
    count = stored.count if stored else len(data.table)
    made_from = (source / INFO_FILE) if stored else (data.directory / "summary.json")
    key = hashlib.sha256(model_sha256(model.path).encode() + made_from.read_bytes()).hexdigest()[:16]
    work = out.parent / f".{out.name}.building"
    if work.exists() and (work / "key").read_text() != key:
        shutil.rmtree(work)  # another model or source: its parts are not ours
    work.mkdir(parents=True, exist_ok=True)
    (work / "key").write_text(key)
    for number, start in enumerate(range(0, count, PART_ROWS)):
        path = work / f"part-{number:05d}.parquet"
        rows = range(start, min(start + PART_ROWS, count))
        if not path.is_file():
            frame, failed = (stored.arrays(rows), []) if stored else _dataset_arrays(data, rows)
            _embed_part(model, frame, failed, path, workers)
        if progress:
            progress(rows.stop, count)
    parts = sorted(work.glob("part-*.parquet"))
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    failed = pd.concat([pd.read_csv(p.with_suffix(".failed.csv"), dtype=str) for p in parts], ignore_index=True)
    summary = _reembedded(stored, model, frame, failed, out) if stored else _assemble(data, model, frame, failed, out)
    shutil.rmtree(work)
    return summary


def stored_crystals(frame: pd.DataFrame) -> list:
    """Crystals from rows of stored arrays (an `id` column and ARRAY_COLUMNS), as they are embedded."""
    return [Structures.crystal(r) for r in frame.to_dict("records")]


def _dataset_arrays(data, rows: range) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    records, failed = [], []
    for row in rows:
        structure_id = str(data.table["id"].iat[row])
        try:
            records.append({"row": row, "id": structure_id, **to_arrays(data.crystal(row))})
        except ValueError as error:  # BadInput / StructureError: the dataset's CIF no longer reads
            failed.append((structure_id, str(error)))
    return pd.DataFrame(records, columns=["row", "id", *ARRAY_COLUMNS]), failed


def _embed_part(model, frame: pd.DataFrame, failed: list[tuple[str, str]], path: Path, workers: int) -> None:
    """One part's embeddings, made from the arrays as stored (not from the CIF they came from)."""
    crystals = stored_crystals(frame)
    encoded = model.encode_crystals(crystals, errors="skip", workers=workers)
    failed = failed + [(crystals[i].id, reason) for i, reason in encoded.failures]
    frame = frame.iloc[encoded.index].reset_index(drop=True)
    frame["embedding"] = list(encoded.embeddings)
    with atomic_path(path.with_suffix(".failed.csv")) as tmp:
        pd.DataFrame(failed, columns=["id", "reason"]).to_csv(tmp, index=False)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _assemble(data, model, frame: pd.DataFrame, failed: pd.DataFrame, out: Path) -> dict:
    vectors = np.stack(frame.pop("embedding").to_numpy()).astype(np.float32)
    rows = frame.pop("row").to_numpy()
    source = data.table.iloc[rows].reset_index(drop=True).assign(texts=data.column("texts", rows))
    structures = pd.concat([source[["id"]], frame[ARRAY_COLUMNS]], axis=1)
    records = source.to_dict("records")
    structures["link"], structures["reference"] = zip(*(_reference(r) for r in records))
    structures["texts"] = source["texts"]
    index = _stored_index(model, vectors, [meta_row(r) for r in records], structures["texts"])
    index.failed = failed.rename(columns={"id": "path"})
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
    return _summary(index, out)


def _reembedded(stored: "Structures", model, frame: pd.DataFrame, failed: pd.DataFrame, out: Path) -> dict:
    """The stored corpus with new vectors: its structures, metadata and failures kept as they are."""
    if len(failed):
        raise StructureError(f"{len(failed)} stored structures no longer encode under {model.path}, e.g. "
                             f"{failed['id'].iat[0]}: {failed['reason'].iat[0]}; build the corpus from its dataset")
    old = Index.load(stored.directory)
    texts = stored.texts()  # the shards are in memory already: their arrays were just embedded
    vectors = np.stack(frame["embedding"].to_numpy()).astype(np.float32)
    index = _stored_index(model, vectors, old.meta.to_dict("records"), texts)
    index.failed, index.info["corpus"] = old.failed, old.info["corpus"]
    with atomic_dir(out) as tmp:
        for name in stored.shards:
            shutil.copy2(stored.directory / name, tmp / name)
        index.save(tmp)
    return _summary(index, out)


def _stored_index(model, vectors: np.ndarray, meta: list[dict], texts: pd.Series) -> Index:
    """The vectors as stored (STORED_AS), with their recall@10 against float32 (and SQ8's) measured on
    real text queries: the first text of RECALL_QUERIES structures picked at random (seed 0)."""
    from ..api import packaged_model_path

    flat = Index.empty(model)
    flat.add_vectors(vectors, meta)
    rows = np.flatnonzero(texts.map(len).to_numpy() > 0)
    pick = np.sort(np.random.default_rng(0).choice(rows, size=min(RECALL_QUERIES, len(rows)), replace=False))
    queries = model.encode_texts([str(texts.iat[r][0]) for r in pick])
    query_kind = f"{len(pick)} texts of the corpus's structures"
    index = flat.compressed(STORED_AS, queries, query_kind)
    index.info["ann"]["sq8_recall_at_10"] = flat.compressed("sq8", queries, query_kind).recall_at_10  # the road not taken
    if Path(model.path).resolve() == packaged_model_path(MODEL_NAME).resolve():
        index.info["model"]["path"] = MODEL_NAME  # the packaged name, not a path on the building machine
    return index


def _summary(index: Index, out: Path) -> dict:
    return {"structures": index.count, "failed": len(index.failed),
            "bytes": sum(p.stat().st_size for p in out.iterdir()), **index.info["ann"]}


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
