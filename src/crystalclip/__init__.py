"""Contrastive language-crystal pretraining: search and classify crystal structures with text."""
from .structures import read_structures

__all__ = ["Model", "load", "read_structures"]


def __getattr__(name: str):
    """`load` and `Model` import torch and transformers: only when asked for."""
    if name in ("load", "Model"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'crystalclip' has no attribute {name!r}")
