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
    from ..data.build import PAIRS_FILE, build_dataset

    out = dataset_dir()
    if not (out / PAIRS_FILE).is_file():
        build_dataset(sources(), out, progress=progress)
    return out


def ensure_embeddings(model, data_dir: Path | None = None, progress=None):
    """(the dataset's rows, their (N, D) embeddings under `model`), cached per model and dataset.

    data_dir defaults to the embedded dataset (built on first use)."""
    import hashlib

    import numpy as np

    from ..data.pairs import PairData
    from ..encoding import embed_rows
    from ..fileio import atomic_path
    from ..models.clip import model_sha256

    data = PairData(data_dir or ensure_dataset(progress))
    digest = hashlib.sha256(model_sha256(model.path).encode())
    digest.update(str(data.directory.resolve()).encode())
    digest.update((data.directory / "summary.json").read_bytes())
    path = cache_dir() / "embeddings" / f"{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        return data, np.load(path)
    formulas = data.formula_features(model.clip.formula_tower)
    embeddings = embed_rows(model.clip, data, np.arange(len(data.table)), formulas, progress=progress)
    with atomic_path(path) as tmp:
        np.save(tmp, embeddings)
    return data, embeddings
