"""A faiss index over a user's own structures: build, add (resumable), search with filters, save/load.

    from crystalclip import load
    from crystalclip.index import Index
    model = load("default")
    index = Index.build("my_cifs/", model)              # broken files land in index.failed
    index.save("my_index")
    index = Index.load("my_index")
    index.search("layered sulfide superconductor", k=10, model=model, elements=["Cu", "O"])

An index directory holds `faiss.index` (the vectors), `meta.parquet` (one row per vector: id, path,
source, formula, elements, spacegroup_number, crystal_system, text), `index.json` (the model that made it,
by path and sha256 of its files; dim, count, kind, the ANN index's measured recall@10) and
`failed.csv` (path, reason) for inputs that gave no structure. Exact inner-product search
(`IndexFlatIP`) by default; `ann=True` builds an HNSW graph instead, and `compressed("fp16" | "sq8" | "ivfpq")`
stores an exact index in fewer bytes (index_kinds.py); each approximate kind records its recall@10
against exact search. Shards made by one model are searched together or merged (index_shards.py).
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadInput, ModelMismatch, NotFound
from .fileio import atomic_path
from .index_kinds import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, configure, empty_exact, recall_at, trained
from .index_meta import META_COLUMNS, filter_mask, meta_row, result
from .models.clip import model_sha256
from .structures import Crystal, ReadFailure, expand_inputs, read_input
from .structures.reader import TABLE_SUFFIXES

INDEX_FILE, META_FILE, INFO_FILE, FAILED_FILE = "faiss.index", "meta.parquet", "index.json", "failed.csv"
MAX_K = 100  # results per query, for every caller (CLI, API, server)
RECALL_QUERIES = 200  # indexed vectors used as queries when measuring the ANN index's recall@10
CHUNK = 256  # structures read and embedded together
FORMAT = 1


def model_identity(model) -> dict:
    """{"path", "sha256"}: sha256 over the model's config.json + model.safetensors (a moved copy still matches)."""
    path = getattr(model, "path", None)
    if path is None:
        raise BadInput("this model has no directory: save it (model.clip.save(dir)) and load it from there first")
    return {"path": str(Path(path).resolve()), "sha256": model_sha256(path)}


class Index:
    def __init__(self, faiss_index, meta: pd.DataFrame, info: dict, failed: pd.DataFrame | None = None):
        self.faiss = faiss_index
        self.meta = meta.reset_index(drop=True)
        self.info = info
        self.failed = failed if failed is not None else pd.DataFrame({"path": [], "reason": []}, dtype=str)
        self.model = None  # the model that embeds queries: given to build/add/search, or loaded on first need
        self._records: dict[int, dict] = {}  # meta rows read so far, as dicts: a result without pandas per hit

    # ---- construction ----

    @classmethod
    def empty(cls, model, ann: bool = False) -> "Index":
        index = empty_exact(model.dim, "hnsw" if ann else "flat")
        info = {"format": FORMAT, "model": model_identity(model), "dim": model.dim, "count": 0,
                "kind": "hnsw" if ann else "flat", "metric": "inner_product",
                "ann": {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH,
                        "recall_at_10": None, "recall_queries": 0} if ann else None}
        return cls(index, pd.DataFrame({c: [] for c in META_COLUMNS}), info)

    @classmethod
    def build(cls, structures_or_paths, model, ann: bool = False, progress: Callable | None = None) -> "Index":
        """Embed structures (paths, folders, CSVs, Crystals, pymatgen Structures) into a new index.

        Unreadable inputs are recorded in `.failed` with their reason; they never stop the build."""
        index = cls.empty(model, ann=ann)
        index.add(structures_or_paths, model, progress=progress)
        return index

    def add(self, structures_or_paths, model, progress: Callable | None = None,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 2000, workers: int = 0) -> dict:
        """Embed what is not in the index yet; returns {"indexed", "failed", "skipped"} counts.

        A file whose path is already indexed is skipped without being read (for a CSV: its rows whose
        id is indexed), so re-running after a kill continues where it stopped. With `checkpoint`, the
        index is saved there every `checkpoint_every` new structures and at the end.
        progress(done, total) counts inputs (files, or in-memory structures). workers > 0: graphs and
        symmetry inputs are built in that many processes while this one reads and encodes."""
        self.check_model(model)
        items = expand_inputs(structures_or_paths)
        present_paths = set(self.meta["path"].dropna())
        present_rows = set(zip(self.meta["path"], self.meta["id"]))
        counts = {"indexed": 0, "failed": 0, "skipped": 0}
        todo = []
        for item in items:
            if isinstance(item, Path) and not _is_table(item) and str(item) in present_paths:
                counts["skipped"] += 1
            else:
                todo.append(item)
        failed_now: list[tuple[str, str]] = []
        retried = {str(item) for item in todo if isinstance(item, Path)}
        pending: list[tuple[Crystal, str | None]] = []
        since_checkpoint = 0
        chunk = CHUNK * (1 + 4 * workers)  # workers featurize a chunk while the model encodes it
        chunk = min(chunk, checkpoint_every) if checkpoint is not None else chunk

        def flush():
            nonlocal since_checkpoint
            if pending:
                lost = self._add_crystals(pending, model, workers)
                failed_now.extend(lost)
                counts["failed"] += len(lost)
                counts["indexed"] += len(pending) - len(lost)
                since_checkpoint += len(pending)
                pending.clear()
            if checkpoint is not None and since_checkpoint >= checkpoint_every:
                self._set_failed(retried, failed_now)
                self.save(checkpoint)
                since_checkpoint = 0

        for done, item in enumerate(todo, 1):
            for found, path in read_input(item):
                if isinstance(found, ReadFailure):
                    failed_now.append((found.where, found.reason))
                    counts["failed"] += 1
                elif path is not None and _is_table(Path(path)) and (path, found.id) in present_rows:
                    counts["skipped"] += 1
                else:
                    pending.append((found, path))
                if len(pending) >= chunk:
                    flush()
            if progress:
                progress(done, len(todo))
        flush()
        self._set_failed(retried, failed_now)
        if self.kind == "hnsw" and counts["indexed"]:
            self.measure_recall()
        elif self.kind != "flat" and counts["indexed"]:
            self.info["ann"]["recall_at_10"] = None  # vectors added after it was measured
        if checkpoint is not None:
            self.save(checkpoint)
        return counts

    def _add_crystals(self, batch: list[tuple[Crystal, str | None]], model, workers: int = 0) -> list[tuple[str, str]]:
        """Embed and add; a structure the model cannot encode is returned as (where, reason)."""
        encoded = model.encode_crystals([c for c, _ in batch], errors="skip", workers=workers)
        kept = [batch[i] for i in encoded.index]
        self.add_vectors(encoded.embeddings, [meta_row(c, path) for c, path in kept])
        return [(_where(*batch[i]), reason) for i, reason in encoded.failures]

    def add_vectors(self, vectors: np.ndarray, rows: list[dict]) -> None:
        """Add embeddings made elsewhere (a dataset's rows), one metadata row (META_COLUMNS) each."""
        if len(vectors) != len(rows):
            raise BadInput(f"{len(vectors)} vectors for {len(rows)} metadata rows")
        if not rows:
            return
        frame = pd.DataFrame(rows, columns=META_COLUMNS)
        self.faiss.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.meta = pd.concat([self.meta, frame], ignore_index=True) if len(self.meta) else frame
        self._records = {}
        self.info["count"] = int(self.faiss.ntotal)

    def _set_failed(self, retried: set[str], failed_now: list[tuple[str, str]]) -> None:
        """Failures of the files read again are replaced by this run's (a fixed file leaves the list)."""
        def file_of(where: str) -> str:
            return where.split(" row ")[0]

        keep = self.failed[~self.failed["path"].map(file_of).isin(retried)] if len(self.failed) else self.failed
        now = pd.DataFrame(failed_now, columns=["path", "reason"], dtype=str)
        self.failed = pd.concat([keep, now], ignore_index=True) if len(keep) else now

    def compressed(self, kind: str, queries: np.ndarray | None = None, query_kind: str | None = None,
                   nlist: int | None = None) -> Index:
        """This exact index as `kind` ("sq8": 8 bits a dimension; "ivfpq": ~72 bytes a vector), with its
        recall@10 against this index measured on `queries` (real query embeddings; default: a sample of
        the indexed vectors) in info["ann"]."""
        if self.kind != "flat":
            raise BadInput(f"only an exact (flat) index can be compressed, not a {self.kind} one")
        if self.count == 0:
            raise BadInput("the index is empty: nothing to compress")
        vectors = self.faiss.reconstruct_n(0, self.count)
        index, settings = trained(vectors, kind, nlist=nlist)
        index.add(vectors)
        if queries is None:
            rows = np.random.default_rng(0).choice(self.count, size=min(RECALL_QUERIES, self.count), replace=False)
            queries, query_kind = vectors[np.sort(rows)], f"{min(RECALL_QUERIES, self.count)} indexed vectors"
        recall = recall_at(self.faiss, index, queries)
        ann = {**settings, "recall_at_10": round(recall, 4), "recall_queries": len(queries), "query_kind": query_kind}
        return Index(index, self.meta, {**self.info, "kind": kind, "ann": ann}, self.failed)

    def measure_recall(self, queries: int = RECALL_QUERIES, k: int = 10, seed: int = 0) -> float | None:
        """recall@k of the HNSW index against exact search, queries = a sample of the indexed vectors."""
        if self.kind != "hnsw" or self.count == 0:
            return None
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(self.count, size=min(queries, self.count), replace=False))
        recall = recall_at(self._exact(), self.faiss, self.faiss.reconstruct_batch(sample.astype(np.int64)), k)
        self.info["ann"].update(recall_at_10=round(recall, 4), recall_queries=len(sample))
        return recall

    # ---- properties ----

    @property
    def count(self) -> int:
        return int(self.faiss.ntotal)

    @property
    def kind(self) -> str:
        return self.info["kind"]

    @property
    def recall_at_10(self) -> float | None:
        return (self.info.get("ann") or {}).get("recall_at_10")

    def __len__(self) -> int:
        return self.count

    def _exact(self):
        """An exact inner-product index over the same vectors (the HNSW graph's flat storage)."""
        import faiss

        return faiss.downcast_index(self.faiss.storage) if self.kind == "hnsw" else self.faiss

    # ---- the model that made it ----

    def check_model(self, model) -> None:
        """ModelMismatch unless `model` is the one (same config + weights) this index was built with."""
        self.check_model_identity(model_identity(model))
        if model.dim != self.info["dim"]:
            raise ModelMismatch(f"model dimension {model.dim} != index dimension {self.info['dim']}")

    def check_model_identity(self, theirs: dict) -> None:
        mine = self.info["model"]
        if theirs["sha256"] != mine["sha256"]:
            raise ModelMismatch(
                f"this index was built with the model at {mine['path']} (sha256 {mine['sha256'][:12]}), "
                f"not with {theirs['path']} (sha256 {theirs['sha256'][:12]}): query it with that model, "
                "or build a new index with this one")

    # ---- saving and loading ----

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the four files, each atomically (temp file + os.replace); index.json last."""
        import faiss

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.info["count"] = self.count
        self.info["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta = self.meta.astype({"spacegroup_number": "Int64"}) if len(self.meta) else self.meta
        with atomic_path(directory / INDEX_FILE) as tmp:
            faiss.write_index(self.faiss, str(tmp))
        with atomic_path(directory / META_FILE) as tmp:
            meta.to_parquet(tmp, index=False, compression="zstd")
        with atomic_path(directory / FAILED_FILE) as tmp:
            self.failed.to_csv(tmp, index=False)
        with atomic_path(directory / INFO_FILE) as tmp:
            tmp.write_text(json.dumps(self.info, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Index":
        import faiss

        directory = Path(directory)
        if not (directory / INFO_FILE).is_file():
            raise NotFound(f"no index at {directory} (no {INFO_FILE}); build one with `crystalclip index`")
        for name in (INDEX_FILE, META_FILE):
            if not (directory / name).is_file():
                raise NotFound(f"{directory} is not a complete index: {name} is missing")
        info = json.loads((directory / INFO_FILE).read_text())
        index = faiss.read_index(str(directory / INDEX_FILE))
        meta = pd.read_parquet(directory / META_FILE)
        meta = meta.rename(columns={"title": "text"})  # format 1 called the text "title" and had no source
        for column in META_COLUMNS:
            if column not in meta.columns:
                meta[column] = None
        failed_path = directory / FAILED_FILE
        failed = pd.read_csv(failed_path, dtype=str, keep_default_na=False) if failed_path.is_file() else None
        if not index.ntotal == len(meta) == info.get("count"):
            raise BadInput(f"{directory} is inconsistent ({index.ntotal} vectors, {len(meta)} metadata rows, "
                             f"index.json says {info.get('count')}): it was interrupted while being written; "
                             "delete it and build it again")
        return cls(configure(index, info), meta, info, failed)

    # ---- search ----

    def search(self, query, k: int = 10, model=None, elements: Iterable[str] | str | None = None,
               spacegroup: int | Iterable[int] | None = None, crystal_system: str | None = None,
               source: str | Iterable[str] | None = None) -> list[dict]:
        """Top-k rows (1 <= k <= MAX_K) for a text, a Crystal or pymatgen Structure, or a vector. Texts and
        structures are embedded by `model`, else by the one attached (`crystalclip.api.open_index`).

        Filters are exact: `elements` = the structure contains all of these; `spacegroup` = one number or
        several; `crystal_system` = cubic, hexagonal, ...; `source` = mp, amcsd, ... (one or several). Each result has `index_meta.RESULT_FIELDS`: rank, id,
        source, formula, spacegroup_number, crystal_system, score (cosine similarity), text, path."""
        if self.count == 0:
            raise BadInput("the index is empty: nothing to search (were all inputs unreadable? see failed.csv)")
        if not 1 <= k <= MAX_K:
            raise BadInput(f"k must be between 1 and {MAX_K}, not {k}")
        q = self.query_vector(query, model)
        mask = filter_mask(self.meta, elements, spacegroup, crystal_system, source)
        if mask is None:
            scores, ids = self._search(q, min(k, self.count))
        else:
            scores, ids = self._filtered_search(q, k, mask)
        return [self._result(rank, int(i), float(s)) for rank, (i, s) in enumerate(zip(ids, scores), 1)]

    def query_vector(self, query, model) -> np.ndarray:
        if isinstance(query, np.ndarray):
            q = np.asarray(query, dtype=np.float32).reshape(1, -1)
            if q.shape[1] != self.info["dim"]:
                raise BadInput(f"query vector has dimension {q.shape[1]}, the index {self.info['dim']}")
            return np.ascontiguousarray(q)
        model = model or self.model
        if model is None:
            raise BadInput("this index has no model attached to embed the query: pass model=, or open it with "
                           "crystalclip.api.open_index")
        self.check_model(model)
        self.model = model
        if isinstance(query, str):
            if not query.strip():
                raise BadInput("empty query")
            return np.ascontiguousarray(model.encode_texts([query]), dtype=np.float32)
        if not isinstance(query, Crystal):
            if not (hasattr(query, "lattice") and hasattr(query, "species")):
                raise BadInput(f"cannot search with a {type(query).__name__}: give text, a Crystal, "
                                 "a pymatgen Structure or a vector")
            query = Crystal.from_pymatgen(query)
        return np.ascontiguousarray(model.encode_crystals([query]), dtype=np.float32)

    def search_vectors(self, queries: np.ndarray, k: int = 10) -> list[list[dict]]:
        """Top-k rows for each of many query vectors (Q, D), in one faiss call: the batched path."""
        if self.count == 0:
            raise BadInput("the index is empty: nothing to search (were all inputs unreadable? see failed.csv)")
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.info["dim"]))
        scores, ids = self.faiss.search(q, min(k, self.count), params=self._params(k))
        return [[self._result(rank, int(i), float(s)) for rank, (i, s) in enumerate(zip(row_ids[row_ids >= 0],
                                                                                    row_scores[row_ids >= 0]), 1)]
                for row_scores, row_ids in zip(scores, ids)]

    def _params(self, k: int):
        if self.kind != "hnsw":
            return None
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = max(k, self.info["ann"]["ef_search"])
        return params

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.faiss.search(q, k, params=self._params(k))
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def _filtered_search(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Over-fetch from the index and keep matching rows; if too few match, exact search over the subset."""
        subset = np.flatnonzero(mask)
        if len(subset) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        k = min(k, len(subset))
        fetch = min(self.count, max(10 * k, math.ceil(2 * k * self.count / len(subset))))
        if fetch <= 4096:
            scores, ids = self._search(q, fetch)
            keep = mask[ids]
            if keep.sum() >= k:
                return scores[keep][:k], ids[keep][:k]
        vectors = self.faiss.reconstruct_batch(subset.astype(np.int64))
        scores = vectors @ q[0]
        top = np.argsort(-scores, kind="stable")[:k]
        return scores[top], subset[top]

    def _result(self, rank: int, i: int, score: float) -> dict:
        row = self._records.get(i)
        if row is None:
            row = self._records[i] = {column: self.meta[column].iat[i] for column in META_COLUMNS}
        return result(row, rank, score)


def _is_table(path: Path) -> bool:
    return path.suffix.lower() in TABLE_SUFFIXES


def _where(crystal: Crystal, path: str | None) -> str:
    """How a failure names its input: the file, a table's row, or the structure's id."""
    if path is None:
        return crystal.id
    return f"{path} row {crystal.id}" if _is_table(Path(path)) else path
