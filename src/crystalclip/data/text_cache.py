"""Frozen text-tower outputs, computed once per text and reused across runs.

Layout: ``cache_dir/text_cache/<sha256(tower.identity())[:16]>/``
    embeddings.npy   (M, dim) float32, one row per unique text, in insertion order
    texts.json       {"identity": ..., "dim": ..., "texts": [M texts]} — row i embeds texts[i]
New texts are appended; both files are rewritten atomically (temp file + os.replace, embeddings
first, so texts.json never names rows that are not on disk; readers take no lock). Writers compute
outside a lock and merge under an exclusive ``.lock`` (fcntl, where available), so concurrent
processes never lose or mislabel rows.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..fileio import atomic_path

SUBDIR = "text_cache"


def cache_path(cache_dir: Path, tower) -> Path:
    key = hashlib.sha256(tower.identity().encode()).hexdigest()[:16]
    return Path(cache_dir) / SUBDIR / key


@contextmanager
def _locked(root: Path):
    try:
        import fcntl
    except ImportError:  # Windows: no lock, single writer assumed
        yield
        return
    with open(root / ".lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_LOADED: dict[Path, tuple[tuple, list[str], np.ndarray]] = {}  # root -> (file stamps, texts, mapping)


def _load(root: Path, identity: str) -> tuple[list[str], np.ndarray | None]:
    """The cache's texts and memory-mapped rows; read again only when its files changed (a cache of
    400k texts has a 200 MB texts.json, and evaluation looks texts up many times)."""
    try:
        stamps = tuple((s.st_mtime_ns, s.st_size) for s in ((root / n).stat() for n in ("texts.json", "embeddings.npy")))
        if root in _LOADED and _LOADED[root][0] == stamps:
            texts, emb = _LOADED[root][1:]
        else:
            meta = json.loads((root / "texts.json").read_text(encoding="utf-8"))
            emb = np.load(root / "embeddings.npy", mmap_mode="r")
            if meta.get("identity") != identity:
                return [], None  # a foreign cache: rebuild
            texts = meta.get("texts", [])
            _LOADED[root] = (stamps, texts, emb)
    except (FileNotFoundError, json.JSONDecodeError, ValueError):
        return [], None
    if emb.ndim != 2 or emb.shape[0] < len(texts):
        return [], None  # inconsistent cache: rebuild
    return list(texts), emb


def _merge(root: Path, identity: str, texts: list[str], new: np.ndarray) -> None:
    """Append the rows of texts not yet in the cache, under the lock (another process may have
    appended meanwhile); embeddings are written before the texts that name them."""
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        known, emb = _load(root, identity)
        seen = set(known)
        add = [i for i, t in enumerate(texts) if t not in seen]
        old = np.asarray(emb[: len(known)], dtype=np.float32) if emb is not None \
            else np.empty((0, new.shape[1]), np.float32)
        emb = np.concatenate([old, new[add]])
        with atomic_path(root / "embeddings.npy") as tmp:
            np.save(tmp, emb)
        meta = {"identity": identity, "dim": int(emb.shape[1]), "texts": known + [texts[i] for i in add]}
        with atomic_path(root / "texts.json") as tmp:
            tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


class CachedRows:
    """Rows of a memory-mapped array, gathered when indexed (through `index` when given): what training
    holds instead of a dense copy, so memory does not grow with the rows (DataLoader workers share the
    pages). The text cache's features, the symmetry cache's numbers and values."""

    def __init__(self, array: np.ndarray, index: np.ndarray | None = None):
        self.array, self.index = array, index

    def __len__(self) -> int:
        return len(self.array if self.index is None else self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.array.shape[1:])

    def __getitem__(self, rows) -> torch.Tensor:
        picked = np.asarray(rows.cpu() if isinstance(rows, torch.Tensor) else rows)
        if self.index is not None:
            picked = self.index[picked]
        order = np.argsort(picked, kind="stable")  # ascending file offsets read the mapping in order
        out = np.empty((len(picked), *self.array.shape[1:]), self.array.dtype)
        out[order] = self.array[picked[order]]
        return torch.from_numpy(out)


def cached_text_rows(cache_dir: Path, texts: list[str], tower, batch_size: int = 128,
                     progress=None, part: int = 32768) -> CachedRows:
    """The cached features of ``texts``, in their order; only uncached unique texts are encoded.

    ``tower`` must be frozen (its outputs must not change between calls). The missing texts are
    encoded and stored in parts of ``part`` texts, so a killed run keeps what it finished.
    ``progress``: optional progress(done, total) over the texts that need computing.
    """
    if any(p.requires_grad for p in tower.parameters()):
        raise ValueError("the text cache needs a frozen text tower (trainable_layers=0); "
                         "a trained tower's outputs change every step")
    texts = [str(t) for t in texts]
    identity = tower.identity()
    root = cache_path(cache_dir, tower)
    known, _ = _load(root, identity)
    seen = set(known)
    missing = list(dict.fromkeys(t for t in texts if t not in seen))
    for start in range(0, len(missing), part):
        chunk = missing[start:start + part]
        report = None if progress is None else (lambda done, _, s=start: progress(s + done, len(missing)))
        new = tower.encode(chunk, batch_size=batch_size, progress=report).numpy().astype(np.float32)
        _merge(root, identity, chunk, new)
    known, emb = _load(root, identity)
    if emb is None:
        emb = np.empty((0, tower.dim), np.float32)
    row = {t: i for i, t in enumerate(known)}
    return CachedRows(emb, np.array([row[t] for t in texts], np.int64))
