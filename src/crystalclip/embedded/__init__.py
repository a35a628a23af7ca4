"""The structures crystalclip searches out of the box: the packaged corpus (corpus.py), ~180k
structures with the default model's embeddings, opened in a second or two.

mp40_captions_*.csv.gz, one of the corpus's sources: the `data/mp-40/test.csv` files of two revisions
of hspark1212/chemeleon (MIT licence); structures and properties from the Materials Project (CC-BY 4.0,
Jain et al. 2013), captions generated from those properties by an OpenAI model (Park et al., Chemeleon, 2024).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from . import corpus


def cache_dir() -> Path:
    return Path(user_cache_dir("crystalclip"))


def ensure_index(model, data_dir: Path | None = None, progress=None):
    """What `search` and `serve` search without --index, with `model` attached: the packaged corpus
    (its stored vectors when `model` made them; else the corpus's structures embedded once under
    `model`), or a dataset's structures (`data_dir`), embedded once per model into the cache directory."""
    from ..index import INFO_FILE, Index
    from ..models.clip import model_sha256

    if data_dir is None and _corpus_model_sha() == model_sha256(model.path):
        return corpus.open_corpus(model)
    digest = hashlib.sha256(model_sha256(model.path).encode())
    if data_dir is None:
        digest.update((corpus.corpus_dir() / INFO_FILE).read_bytes())
    else:
        digest.update(str(Path(data_dir).resolve()).encode())
        digest.update((Path(data_dir) / "summary.json").read_bytes())
    where = cache_dir() / "indexes" / digest.hexdigest()[:16]
    if (where / INFO_FILE).is_file():
        index = Index.load(where)
    else:
        index = _embed_corpus(model, progress) if data_dir is None else _embed_dataset(model, data_dir, progress)
        index.save(where)
    index.check_model(model)
    index.model = model
    return index


def _corpus_model_sha() -> str:
    import json

    from ..errors import NotFound
    from ..index import INFO_FILE

    if not corpus.available():
        raise NotFound(f"the packaged corpus is missing ({corpus.corpus_dir()}): reinstall crystalclip, "
                       "or build it with `crystalclip data corpus DATASET`")
    return json.loads((corpus.corpus_dir() / INFO_FILE).read_text())["model"]["sha256"]


def _embed_corpus(model, progress=None):
    """The corpus's structures under another model than the one that made its vectors."""
    from ..index import Index

    stored = Index.load(corpus.corpus_dir()).meta.to_dict("records")
    structures = corpus.Structures()
    index = Index.empty(model)
    for start in range(0, len(stored), corpus.PART_ROWS):
        rows = range(start, min(start + corpus.PART_ROWS, len(stored)))
        encoded = model.encode_crystals(corpus.stored_crystals(structures.arrays(rows)), errors="skip")
        index.add_vectors(encoded.embeddings, [stored[rows[i]] for i in encoded.index])
        if progress:
            progress(rows[-1] + 1, len(stored))
    return index


def _embed_dataset(model, data_dir: Path, progress=None):
    from ..data.dataset import Dataset
    from ..encoding import embed_rows, row_inputs
    from ..index import Index

    data = Dataset(data_dir)
    embeddings = embed_rows(model.clip, rows=np.arange(len(data)), progress=progress, **row_inputs(model.clip, data))
    index = Index.empty(model)
    index.add_vectors(embeddings, [corpus.meta_row(r) for r in data.table.assign(texts=data.column("texts")).to_dict("records")])
    return index
