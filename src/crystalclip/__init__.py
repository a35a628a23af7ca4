"""Contrastive language-crystal pretraining: search and classify crystal structures with text."""
from .structures import read_structures

__all__ = ["Index", "Model", "load", "read_structures"]


def __getattr__(name: str):
    """`load`, `Model` and `Index` import torch, transformers and faiss: only when asked for."""
    if name in ("load", "Model"):
        from . import api

        return getattr(api, name)
    if name == "Index":
        from .index import Index

        return Index
    raise AttributeError(f"module 'crystalclip' has no attribute {name!r}")
