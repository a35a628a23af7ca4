"""Reading crystal structures: CIF (gemmi fast path, pymatgen fallback), POSCAR, extxyz, CSV."""
from .cif import parse_cif
from .crystal import Crystal, StructureError
from .reader import ReadFailure, iter_crystals, read_structures, read_text

__all__ = ["Crystal", "ReadFailure", "StructureError", "iter_crystals", "parse_cif", "read_structures", "read_text"]
