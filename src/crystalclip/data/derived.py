"""Texts derived from a dataset (keywords, summaries, synthetic descriptions), stored beside it.

A kind of derived text is one file, ``DATASET/texts/<kind>.parquet`` (columns ``id``, ``texts``: a
list of strings per structure), written atomically. A recipe trains on a kind instead of the
dataset's own texts; evaluation always uses the dataset's own texts, so recipes stay comparable.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ..fileio import atomic_path

TEXTS_DIR = "texts"
ORIGINAL = "pairs"  # the dataset's own texts (titles, captions, ...)
COMMANDS = {"keywords": "keywords", "summaries": "summarize", "descriptions": "describe"}  # kind -> its command


def texts_path(dataset_dir: str | os.PathLike, kind: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", kind) or kind == ORIGINAL:
        raise ValueError(f"invalid kind of derived text {kind!r} (letters, digits, _ and -; not {ORIGINAL!r})")
    return Path(dataset_dir) / TEXTS_DIR / f"{kind}.parquet"


def write_texts(dataset_dir: str | os.PathLike, kind: str, texts: dict[str, list[str]]) -> Path:
    """Store {structure id: [texts]}; structures with no text are left out."""
    path = texts_path(dataset_dir, kind)
    table = pd.DataFrame({"id": list(texts), "texts": [list(map(str, v)) for v in texts.values()]})
    table = table[table["texts"].map(len) > 0]
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path


def read_texts(dataset_dir: str | os.PathLike, kind: str) -> dict[str, list[str]]:
    path = texts_path(dataset_dir, kind)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: write it first with "
                                f"`crystalclip data {COMMANDS.get(kind, kind)} {dataset_dir}`")
    table = pd.read_parquet(path)
    return {str(i): list(t) for i, t in zip(table["id"], table["texts"])}
