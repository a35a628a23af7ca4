"""A crystal as plain arrays: the fast internal form that graphs are built from.

pymatgen's Structure is what users get back, but building one costs ~1 ms; the data pipeline keeps
the arrays and converts only when asked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class StructureError(ValueError):
    """A structure that cannot be used; the message is a one-line reason."""


@dataclass
class Crystal:
    id: str
    lattice: np.ndarray  # (3, 3) float64, rows are the lattice vectors in Å
    frac_coords: np.ndarray  # (n_sites, 3) float64, P1 sites in the unit cell
    species: list[dict[int, float]]  # per site: atomic number -> occupancy
    metadata: dict = field(default_factory=dict)  # title, journal, year, doi, mineral, formula, ...

    def __len__(self) -> int:
        return len(self.species)

    @property
    def is_ordered(self) -> bool:
        return all(len(s) == 1 and abs(next(iter(s.values())) - 1.0) < 1e-6 for s in self.species)

    @property
    def cart_coords(self) -> np.ndarray:
        return self.frac_coords @ self.lattice

    def species_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(site index, atomic number, occupancy) for every (site, element) pair, flattened."""
        site = [i for i, s in enumerate(self.species) for _ in s]
        z = [k for s in self.species for k in s]
        occ = [v for s in self.species for v in s.values()]
        return np.array(site, np.int64), np.array(z, np.int64), np.array(occ, np.float32)

    def composition(self) -> dict[str, float]:
        from pymatgen.core.periodic_table import Element

        amounts: dict[str, float] = {}
        for s in self.species:
            for z, occ in s.items():
                sym = Element.from_Z(z).symbol
                amounts[sym] = amounts.get(sym, 0.0) + occ
        return amounts

    def reduced_formula(self) -> str:
        """"SrTiO3"-style reduced formula (pymatgen's, occupancies counted)."""
        import warnings

        from pymatgen.core import Composition

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about noble gases' missing electronegativity
            return Composition(self.composition()).reduced_formula

    def to_pymatgen(self):
        from pymatgen.core import Lattice, Structure
        from pymatgen.core.periodic_table import Element

        species = [{Element.from_Z(z): occ for z, occ in s.items()} for s in self.species]
        structure = Structure(Lattice(self.lattice), species, self.frac_coords)
        structure.properties = {"id": self.id, **self.metadata}
        return structure

    @classmethod
    def from_pymatgen(cls, structure, id: str | None = None, metadata: dict | None = None) -> "Crystal":
        species = [{el.Z: float(occ) for el, occ in site.species.items()} for site in structure]
        props = dict(getattr(structure, "properties", {}) or {})
        return cls(
            id=id or str(props.pop("id", "structure")),
            lattice=np.array(structure.lattice.matrix, dtype=np.float64),
            frac_coords=np.array(structure.frac_coords, dtype=np.float64),
            species=species,
            metadata={**props, **(metadata or {})},
        )
