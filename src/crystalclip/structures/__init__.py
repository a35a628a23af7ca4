"""Reading crystal structures: CIF (gemmi fast path, pymatgen fallback), POSCAR, extxyz, CSV/Parquet."""
from .cif import parse_cif
from .crystal import Crystal, StructureError
from .reader import (ReadFailure, expand_inputs, iter_crystals, read_input, read_structures, read_text,
                     structure_files)

__all__ = ["Crystal", "ReadFailure", "StructureError", "expand_inputs", "iter_crystals", "parse_cif", "read_input",
           "read_structures", "read_text", "structure_files"]
