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


def _load(root: Path, identity: str) -> tuple[list[str], np.ndarray | None]:
    try:
        meta = json.loads((root / "texts.json").read_text(encoding="utf-8"))
        emb = np.load(root / "embeddings.npy", mmap_mode="r")
    except (FileNotFoundError, json.JSONDecodeError, ValueError):
        return [], None
    texts = meta.get("texts", [])
    if meta.get("identity") != identity or emb.ndim != 2 or emb.shape[0] < len(texts):
        return [], None  # foreign or inconsistent cache: rebuild
    return texts, emb


def cached_text_embeddings(cache_dir: Path, texts: list[str], tower, batch_size: int = 128,
                           progress=None) -> np.ndarray:
    """(len(texts), dim) float32 rows in the order of ``texts``; only uncached unique texts are encoded.

    ``tower`` must be frozen (its outputs must not change between calls). ``progress``: optional
    progress(done, total) passed to ``tower.encode`` for the texts that need computing.
    """
    if any(p.requires_grad for p in tower.parameters()):
        raise ValueError("cached_text_embeddings needs a frozen text tower (trainable_layers=0); "
                         "a trained tower's outputs change every step")
    texts = [str(t) for t in texts]
    identity = tower.identity()
    root = cache_path(cache_dir, tower)
    known, emb = _load(root, identity)
    row = {t: i for i, t in enumerate(known)}
    missing = list(dict.fromkeys(t for t in texts if t not in row))
    if missing:
        new = tower.encode(missing, batch_size=batch_size, progress=progress).numpy().astype(np.float32)
        root.mkdir(parents=True, exist_ok=True)
        with _locked(root):
            known, emb = _load(root, identity)  # again: another process may have appended meanwhile
            row = {t: i for i, t in enumerate(known)}
            add = [i for i, t in enumerate(missing) if t not in row]
            old = np.asarray(emb[: len(known)], dtype=np.float32) if emb is not None \
                else np.empty((0, new.shape[1]), np.float32)
            emb = np.concatenate([old, new[add]])
            for i in add:
                row[missing[i]] = len(row)
            known = known + [missing[i] for i in add]
            with atomic_path(root / "embeddings.npy") as tmp:
                np.save(tmp, emb)
            meta = {"identity": identity, "dim": int(emb.shape[1]), "texts": known}
            with atomic_path(root / "texts.json") as tmp:
                tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    dim = emb.shape[1] if emb is not None else tower.dim
    if not texts:
        return np.empty((0, dim), np.float32)
    return np.ascontiguousarray(emb[[row[t] for t in texts]], dtype=np.float32)
