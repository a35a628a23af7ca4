"""The structures crystalclip searches out of the box: AMCSD (from larixite), CoRE MOF 2019 (from
core-mof) and the mp40 captions copied here.

mp40_captions_*.csv.gz: the `data/mp-40/test.csv` files of two revisions of hspark1212/chemeleon
(MIT licence); structures and properties from the Materials Project (CC-BY 4.0, Jain et al. 2013),
captions generated from those properties by an OpenAI model (Park et al., Chemeleon, 2024).

The pair dataset built from them lives in the user's cache directory, built on first use.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir


def mp40_files() -> list[Path]:
    here = Path(str(resources.files(__name__)))
    return [here / "mp40_captions_1000.csv.gz", here / "mp40_captions_708.csv.gz"]


def sources() -> list[str]:
    return ["amcsd", "core-mof", *map(str, mp40_files())]


def cache_dir() -> Path:
    return Path(user_cache_dir("crystalclip"))


def dataset_dir() -> Path:
    return cache_dir() / "embedded-dataset"


def ensure_dataset(progress=None) -> Path:
    """The embedded pair dataset, built into the cache directory the first time (~3 min on 2 cores)."""
    from ..data.build import build_dataset
    from ..data.dataset import Dataset

    out = dataset_dir()
    if not Dataset.exists(out):
        build_dataset(sources(), out, progress=progress)
    return out


def ensure_index(model, data_dir: Path | None = None, progress=None):
    """An `Index` over a dataset's structures (default: the embedded one, built on first use) under
    `model`, cached per model and dataset in the cache directory; the model is attached for queries."""
    import hashlib

    from ..data.dataset import Dataset
    from ..encoding import embed_rows, row_potential, row_symmetry
    from ..index import INFO_FILE, Index
    from ..models.clip import model_sha256
    from ..structures.symmetry import crystal_system

    data = Dataset(data_dir or ensure_dataset(progress))
    digest = hashlib.sha256(model_sha256(model.path).encode())
    digest.update(str(data.directory.resolve()).encode())
    digest.update((data.directory / "summary.json").read_bytes())
    where = cache_dir() / "indexes" / digest.hexdigest()[:16]
    if (where / INFO_FILE).is_file():
        index = Index.load(where)
    else:
        graphs = data.check_graphs(model.graph_config)
        formulas = data.formula_features(model.clip.formula_tower) if model.clip.config.composition_channel else None
        embeddings = embed_rows(model.clip, graphs, np.arange(len(data)), formulas, progress=progress,
                                symmetry=row_symmetry(model.clip, data), potential=row_potential(model.clip, data))
        table = data.table
        rows = [{"id": str(r["id"]), "source": r["source"], "path": None, "formula": r["formula"],
                 "elements": list(r["elements"]), "spacegroup_number": int(r["spacegroup_number"]),
                 "crystal_system": crystal_system(r["spacegroup_number"]), "text": r["texts"][0] if len(r["texts"]) else None}
                for r in table[["id", "source", "formula", "elements", "spacegroup_number", "texts"]].to_dict("records")]
        index = Index.empty(model)
        index.add_vectors(embeddings, rows)
        index.save(where)
    index.check_model(model)
    index.model = model
    return index
