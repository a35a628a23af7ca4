"""Contrastive language-crystal pretraining: search and classify crystal structures with text."""
from .structures import read_structures

__all__ = ["read_structures"]
