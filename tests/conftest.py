"""Shared real data for the tests: ../shared/data (mp40, cif-edge-cases) and AMCSD from larixite."""
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MP40 = SHARED / "mp40"
EDGE_CASES = SHARED / "cif-edge-cases"


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails the test: the code under test must work offline."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@lru_cache
def mp40_table() -> pd.DataFrame:
    return pd.read_csv(MP40 / "captions_1000.csv")


@lru_cache
def amcsd_cifs(step: int = 40) -> list[tuple[str, str]]:
    """(id, CIF text) of every step-th AMCSD entry."""
    from crystalclip.sources import amcsd

    entries = [e for e in amcsd.iter_entries() if hasattr(e, "cif")]
    return [(e.id, e.cif) for e in entries[::step]]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A short real run shared by the model tests: 1,000 mp40 structures with their captions,
    frozen MiniLM (features cached in the dataset), CGCNN, 6 epochs."""
    from crystalclip.data.build import build_dataset
    from crystalclip.recipe import load_recipe
    from crystalclip.training import train

    root = tmp_path_factory.mktemp("run")
    build_dataset([MP40 / "captions_1000.csv"], root / "data")
    recipe = load_recipe("default", {"train.epochs": 6, "train.batch_size": 128, "train.warmup_steps": 5})
    summary = train(root / "data", recipe, root / "run", progress_bar=False)
    return root, summary


@pytest.fixture(scope="session")
def default_model():
    """The packaged default model (one load for every test module that needs it)."""
    import crystalclip

    return crystalclip.load("default")


@pytest.fixture(scope="session")
def shipped(default_model):
    """The packaged corpus as an index, the default model attached."""
    from crystalclip.embedded import corpus

    return corpus.open_corpus(default_model)
