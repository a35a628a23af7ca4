"""One class owns a dataset directory: everything else opens datasets through `Dataset`.

A dataset directory (written by `crystalclip data build`, see data/build.py) holds
  pairs.parquet   one row per structure: id, source, cif, texts, split, formula, ... + label columns
  graphs/         the crystal graphs, row-aligned with pairs.parquet (crystalclip.graphs.GraphStore)
  rejected.csv    id, source, path, reason for every entry that could not be used
  summary.json    counts: pairs, rejected by reason, rows per split, graph config
  texts/<kind>.parquet   derived texts (keywords, summaries, descriptions): id, texts
  text_cache/     the frozen text tower's features of every text it has read (data/text_cache.py)
  symmetry_cache/ the symmetry channel's inputs of every row, per symprec (memory-mapped)
  potential_cache/ frozen pretrained-potential (CHGNet) features of every row, per model version

A `TextPool` is what a structure may be paired with in a step: the dataset's own texts, or texts
derived from it. Validation and evaluation always use the dataset's own texts.
"""
from __future__ import annotations

import array
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import BadInput, ModelMismatch, NotFound
from ..fileio import atomic_path
from ..graphs import GraphConfig, GraphStore

PAIRS_FILE, REJECTED_FILE, SUMMARY_FILE, GRAPHS_DIR = "pairs.parquet", "rejected.csv", "summary.json", "graphs"
TEXTS_DIR, SYMMETRY_CACHE, POTENTIAL_CACHE = "texts", "symmetry_cache", "potential_cache"
ORIGINAL = "pairs"  # the dataset's own texts (titles, captions, ...)
COMMANDS = {"keywords": "keywords", "summaries": "summarize", "descriptions": "describe",
            "titles": "titles", "facts": "facts"}  # kind -> the command that writes it
# read from disk when asked (`column`, `iter_column`), never held per row: the graphs are stored, CIF text
# is read when a crystal is needed, and the texts live once each in the text pools (~2 KB a row here)
_COLUMNS_ON_DISK = {"cif", "texts", "texts_formula_free"}


class RowTexts:
    """Each row's text indices as two flat arrays (row r holds ids[offsets[r]:offsets[r + 1]]): no
    Python object per row, so a pool costs 8 bytes per row and per pairing, however many rows."""

    def __init__(self, offsets: np.ndarray, ids: np.ndarray):
        self.offsets, self.ids = offsets, ids

    @classmethod
    def from_counts(cls, counts: np.ndarray, ids: np.ndarray) -> "RowTexts":
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, np.asarray(ids, np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, row: int) -> np.ndarray:
        return self.ids[self.offsets[row]:self.offsets[row + 1]]

    def __iter__(self):
        return (self[r] for r in range(len(self)))

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass
class TextPool:
    """Distinct texts, and for each dataset row the indices of its texts (possibly none)."""

    texts: list[str]
    row_texts: RowTexts
    formula_free: list[str] | None = None  # each text's formula-free twin, when asked for

    @classmethod
    def from_lists(cls, per_row) -> "TextPool":
        """From each row's texts (any iterable of lists, read once)."""
        index: dict[str, int] = {}
        counts, ids = array.array("q"), array.array("q")  # machine integers: no object per row
        for texts in per_row:
            ids.extend(index.setdefault(t, len(index)) for t in texts)
            counts.append(len(texts))
        return cls(list(index), RowTexts.from_counts(np.array(counts, np.int64), np.array(ids, np.int64)))

    def _renumbered(self, counts: np.ndarray, ids: np.ndarray, texts: list[str], free=None) -> "TextPool":
        """`ids` (into `texts`) renumbered in order of first use, unused texts dropped: the pool
        `from_lists` would build from the same rows."""
        used, first = np.unique(ids, return_index=True)
        order = used[np.argsort(first, kind="stable")]  # old ids in order of first use
        new = np.empty(len(texts), np.int64)
        new[order] = np.arange(len(order))
        keep = order.tolist()
        return TextPool([texts[i] for i in keep], RowTexts.from_counts(counts, new[ids]),
                        None if free is None else [free[i] for i in keep])

    def of_rows(self, rows: np.ndarray) -> "TextPool":
        """The texts of `rows` only (the other rows get none): what a training split reads."""
        keep = np.zeros(len(self.row_texts), bool)
        keep[np.asarray(rows, dtype=np.int64)] = True
        counts = np.where(keep, self.row_texts.counts(), 0)
        ids = self.row_texts.ids[np.repeat(keep, self.row_texts.counts())]
        return self._renumbered(counts, ids, self.texts, self.formula_free)

    def with_twins(self, fraction: float, seed: int = 0) -> "TextPool":
        """A fixed `fraction` of the texts replaced by their formula-free twins for a whole run (each
        text decided once by a hash of itself and the seed): the tower reads one form of each text
        instead of both, half the work of swapping per step."""
        import hashlib

        def drawn(text: str) -> float:
            return int.from_bytes(hashlib.blake2b(f"{seed}|{text}".encode(), digest_size=8).digest(), "big") / 2**64

        picked = [twin if drawn(text) < fraction else text for text, twin in zip(self.texts, self.formula_free)]
        index: dict[str, int] = {}
        merged = np.array([index.setdefault(t, len(index)) for t in picked], np.int64)  # twins may coincide
        return self._renumbered(self.row_texts.counts(), merged[self.row_texts.ids], list(index))

    def has_text(self, rows: np.ndarray) -> np.ndarray:
        return self.row_texts.counts()[np.asarray(rows, dtype=np.int64)] > 0


def row_crystal(id_: str, cif: str):
    """The structure of one dataset row. A row from a several-block CIF is named
    "<entry id>#<block name>" (data/build.py): its own block, never silently the first."""
    from ..structures import parse_cif

    crystals = parse_cif(cif, id_.rsplit("#", 1)[0] if "#" in id_ else id_)
    if len(crystals) == 1:
        return crystals[0]
    for crystal in crystals:
        if crystal.id == id_:
            return crystal
    raise BadInput(f"{id_}: no block of that name in its CIF")


def _symmetry_of_row(task: tuple[str, str, float]):
    from ..structures.symmetry import symmetry_features

    id_, cif, symprec = task
    return symmetry_features(row_crystal(id_, cif), symprec)


class Dataset:
    """``columns``: the row-table columns to hold in memory (default: all but the texts and CIFs);
    id, source, split and formula are always held. Training holds only what it reads, so its table
    costs ~70 bytes a row instead of ~600."""

    ALWAYS = ("id", "source", "split", "formula")

    def __init__(self, directory: str | os.PathLike, columns=None):
        self.directory = Path(directory)
        if not self.exists(self.directory):
            raise NotFound(f"{self.directory} is not a crystalclip dataset (no {PAIRS_FILE}); "
                           f"build one with `crystalclip data build`")
        import pyarrow.parquet as pq

        self.columns = pq.read_schema(self.pairs_path).names
        wanted = set(self.columns) - _COLUMNS_ON_DISK if columns is None else {*self.ALWAYS, *columns}
        self.table = pd.read_parquet(self.pairs_path, columns=[c for c in self.columns if c in wanted])
        self._graphs: GraphStore | None = None
        self._cifs: list[str] | None = None
        self.own = TextPool.from_lists(self.iter_column("texts"))  # every distinct text once
        self.texts, self.row_texts = self.own.texts, self.own.row_texts
        self.formulas = self.table["formula"].tolist()

    @staticmethod
    def exists(directory: str | os.PathLike) -> bool:
        return (Path(directory) / PAIRS_FILE).is_file()

    @property
    def pairs_path(self) -> Path:
        return self.directory / PAIRS_FILE

    def __len__(self) -> int:
        return len(self.table)

    @property
    def summary(self) -> dict:
        return json.loads((self.directory / SUMMARY_FILE).read_text())

    # ---- graphs ----

    @property
    def graphs(self) -> GraphStore:
        if self._graphs is None:
            self._graphs = GraphStore.open(self.directory / GRAPHS_DIR)
            if len(self._graphs) != len(self.table):
                raise BadInput(f"{self.directory}: {len(self._graphs)} graphs for {len(self.table)} rows; rebuild it")
        return self._graphs

    def check_graphs(self, config: GraphConfig) -> GraphStore:
        """The stored graphs, if they were built the way `config` (the model's) builds them."""
        stored = self.graphs.config
        if (stored.cutoff, stored.max_neighbors) != (config.cutoff, config.max_neighbors):
            raise ModelMismatch(
                f"{self.directory}: its graphs were built with cutoff {stored.cutoff} Å and {stored.max_neighbors} "
                f"neighbours, the model uses cutoff {config.cutoff} Å and {config.max_neighbors}: rebuild it with "
                f"`crystalclip data build ... --cutoff {config.cutoff} --max-neighbors {config.max_neighbors}`")
        return self.graphs

    # ---- rows and crystals ----

    def rows(self, split: str | None = None, sources: list[str] | None = None) -> np.ndarray:
        mask = np.ones(len(self.table), bool)
        if split is not None:
            mask &= (self.table["split"] == split).to_numpy()
        if sources:
            mask &= self.table["source"].isin(sources).to_numpy()
        return np.nonzero(mask)[0]

    def cifs(self) -> list[str]:
        if self._cifs is None:
            self._cifs = self.column("cif")
        return self._cifs

    def iter_cifs(self, batch_rows: int = 2048):
        """Every row's CIF text in order, read from disk a batch at a time (never all at once)."""
        return self.iter_column("cif", batch_rows)

    def iter_column(self, name: str, batch_rows: int = 8192):
        """Every row's value of one pairs.parquet column in order, read a batch at a time."""
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(self.pairs_path).iter_batches(batch_size=batch_rows, columns=[name]):
            yield from batch.column(0).to_pylist()

    def column(self, name: str, rows=None) -> list:
        """One pairs.parquet column (of `rows`, in their order), read from disk: the texts and CIFs are
        not kept in `table`."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        values = pq.read_table(self.pairs_path, columns=[name]).column(0)
        if rows is not None:
            values = values.take(pa.array(np.asarray(rows, dtype=np.int64)))
        return values.to_pylist()

    def crystal(self, row: int):
        """The structure of a row, parsed again from its CIF (augmentations, descriptions)."""
        return row_crystal(str(self.table["id"].iat[row]), self.cifs()[row])

    def records(self, columns: list[str], limit: int | None = None) -> list[dict]:
        """Rows as dicts with those of `columns` the dataset has (`id` always): what derived-text
        writers read (keywords and summaries read id/title/abstract/texts, descriptions id/cif)."""
        wanted = ["id"] + [c for c in columns if c in self.columns and c != "id"]
        table = pd.read_parquet(self.pairs_path, columns=wanted)
        return (table.head(limit) if limit is not None else table).to_dict("records")

    # ---- own and derived texts ----

    def texts_path(self, kind: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", kind) or kind == ORIGINAL:
            raise BadInput(f"invalid kind of derived text {kind!r} (letters, digits, _ and -; not {ORIGINAL!r})")
        return self.directory / TEXTS_DIR / f"{kind}.parquet"

    def write_texts(self, kind: str, texts: dict[str, list[str]]) -> Path:
        """Store {structure id: [texts]} atomically; structures with no text are left out."""
        path = self.texts_path(kind)
        table = pd.DataFrame({"id": list(texts), "texts": [list(map(str, v)) for v in texts.values()]})
        table = table[table["texts"].map(len) > 0]
        with atomic_path(path) as tmp:
            table.to_parquet(tmp, index=False)
        return path

    def read_texts(self, kind: str) -> dict[str, list[str]]:
        path = self.texts_path(kind)
        if not path.is_file():
            raise NotFound(f"{path} does not exist: write it first with "
                           f"`crystalclip data {COMMANDS.get(kind, kind)} {self.directory}`")
        table = pd.read_parquet(path)
        return {str(i): list(t) for i, t in zip(table["id"], table["texts"])}

    def text_pool(self, kinds: str | list[str] = ORIGINAL, formula_free: bool = False) -> TextPool:
        """The dataset's own texts ("pairs") and/or derived kinds, merged per row; with `formula_free`,
        each text's formula-free twin too: the describer's own for descriptions (`texts_formula_free`,
        `texts/<kind>_formula_free.parquet`), `text.masking.mask_formulas` of the others."""
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if kinds == [ORIGINAL] and not formula_free:
            return self.own
        from ..text.masking import mask_formulas

        derived = {kind: (self.read_texts(kind), self.read_texts(f"{kind}_formula_free") if formula_free and
                          self.texts_path(f"{kind}_formula_free").is_file() else {})
                   for kind in kinds if kind != ORIGINAL}
        own_free = self.iter_column("texts_formula_free") if formula_free and ORIGINAL in kinds and \
            "texts_formula_free" in self.columns else itertools.repeat(None)
        # one pass over the rows, each text and its twin kept at its first use only: nothing per row
        # but two integers (a pool of 1M rows would otherwise hold 1M lists and a twin string per row)
        index: dict[str, int] = {}
        twins: list[str] = []
        counts = np.zeros(len(self.table), np.int64)
        ids = array.array("q")
        for row, (id_, own_twins) in enumerate(zip(self.table["id"], own_free)):
            for kind in kinds:
                if kind == ORIGINAL:  # the own pool's strings, not copies
                    texts, free = [self.texts[i] for i in self.row_texts[row]], own_twins
                else:
                    texts, free = derived[kind][0].get(id_, ()), derived[kind][1].get(id_)
                free = free if free is not None and len(free) == len(texts) else None
                for k, text in enumerate(texts):
                    i = index.get(text)
                    if i is None:
                        i = index[text] = len(index)
                        if formula_free:
                            twins.append(free[k] if free is not None else mask_formulas(text))
                    ids.append(i)
                counts[row] += len(texts)
        row_texts = RowTexts.from_counts(counts, np.array(ids, np.int64))
        return TextPool(list(index), row_texts, twins if formula_free else None)

    # ---- the frozen tower's features, cached in the dataset ----

    def text_features(self, tower, pool: TextPool | None = None) -> torch.Tensor:
        """The frozen tower's features of a pool's texts (default: the dataset's own)."""
        return self.tower_features((pool or self.own).texts, tower)

    def formula_features(self, tower) -> torch.Tensor:
        """The frozen tower's features of each row's reduced formula (the composition channel)."""
        return self.tower_features(self.formulas, tower)

    def symmetry_features(self, symprec: float = 0.1, workers: int | None = None):
        """(space-group numbers (N,), `structures.symmetry.symmetry_features` values (N, F)) of every
        row as memory-mapped `CachedRows`, computed once per symprec and cached in the dataset
        (`symmetry_cache/symprec-<s>/`: ids, numbers and values .npy, ids written last)."""
        from .text_cache import CachedRows

        root = self.directory / SYMMETRY_CACHE / f"symprec-{symprec:g}"
        ids = self.table["id"].astype(str).to_numpy()
        mapped = self._mapped_symmetry(root)
        if mapped is None or not (len(mapped[0]) == len(ids) and (mapped[0] == ids).all()):
            numbers, values = self._compute_symmetry(ids, symprec, workers)
            for name, array in (("numbers", numbers), ("values", values), ("ids", ids.astype(str))):
                with atomic_path(root / f"{name}.npy") as tmp:
                    np.save(tmp, array)
            mapped = self._mapped_symmetry(root)
        return CachedRows(mapped[1]), CachedRows(mapped[2])

    @staticmethod
    def _mapped_symmetry(root: Path):
        """(ids, numbers, values) of a complete cache, memory-mapped; None when a file is missing or short."""
        try:
            mapped = tuple(np.load(root / f"{name}.npy", mmap_mode="r") for name in ("ids", "numbers", "values"))
        except (FileNotFoundError, ValueError):
            return None
        return mapped if len(mapped[0]) == len(mapped[1]) == len(mapped[2]) else None

    def _compute_symmetry(self, ids: np.ndarray, symprec: float, workers: int | None):
        workers = workers or min(2, os.cpu_count() or 1)
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 and len(ids) > 256 else None
        results, cifs = [], self.iter_cifs()
        try:
            for start in range(0, len(ids), 8192):  # a slice of the CIFs in memory at a time
                tasks = [(str(i), next(cifs), symprec) for i in ids[start:start + 8192]]
                results += pool.map(_symmetry_of_row, tasks, chunksize=64) if pool else map(_symmetry_of_row, tasks)
        finally:
            if pool:
                pool.close()
        numbers = np.array([n for n, _ in results], np.int64)
        values = np.stack([v for _, v in results]) if results else np.zeros((0, 0), np.float32)
        return numbers, values

    def potential_features(self, compute, identity: str, part: int = 2048, progress=None) -> torch.Tensor:
        """(N, F) frozen potential features of every row (`models.chgnet`), cached in the dataset under
        `potential_cache/<identity>/` in parts of `part` rows, each written atomically: a killed run
        resumes with the parts it lacks, and a complete cache runs no forward pass."""
        root = self.directory / POTENTIAL_CACHE / identity
        ids = self.table["id"].astype(str).tolist()
        parts, cifs = [], self.iter_cifs(part)
        for number, start in enumerate(range(0, len(ids), part)):
            path = root / f"part-{number:05d}.npz"
            chunk = ids[start:start + part]
            texts = [next(cifs) for _ in chunk]
            if path.is_file():
                cached = np.load(path, allow_pickle=False)
                if cached["ids"].tolist() == chunk:
                    parts.append(cached["values"])
                    continue
            values = np.asarray(compute([row_crystal(i, cif) for i, cif in zip(chunk, texts)]), np.float32)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, ids=np.array(chunk), values=values)
            parts.append(values)
            if progress:
                progress(start + len(chunk), len(ids))
        return torch.from_numpy(np.concatenate(parts) if parts else np.zeros((0, 0), np.float32))

    def tower_features(self, strings: list[str], tower) -> torch.Tensor:
        return self.feature_rows(strings, tower)[np.arange(len(strings))]

    def feature_rows(self, strings: list[str], tower):
        """The frozen tower's features of `strings` as `text_cache.CachedRows`: memory-mapped, gathered
        per batch (training), not copied."""
        from .text_cache import cached_text_rows

        return cached_text_rows(self.directory, strings, tower)
