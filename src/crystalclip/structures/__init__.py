"""Reading crystal structures: CIF (gemmi fast path, pymatgen fallback), POSCAR, extxyz, CSV/Parquet."""
import os

# spglib's C code prints "ssm_get_exact_positions failed" to stderr for every hard structure, over any
# progress bar; its failures are handled (and reported) where they matter. A user's own setting wins.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

from .cif import parse_cif
from .crystal import Crystal, StructureError
from .reader import (ReadFailure, expand_inputs, iter_crystals, read_input, read_structures, read_text,
                     structure_files)

__all__ = ["Crystal", "ReadFailure", "StructureError", "expand_inputs", "iter_crystals", "parse_cif", "read_input",
           "read_structures", "read_text", "structure_files"]
