"""A crystal as a few compact arrays, for a corpus that ships inside the package.

Fractional coordinates are stored as uint16 steps of 1/65536 of a lattice vector (at most 0.0002 Å off
in a 30 Å cell, finer than most CIFs' 4-5 decimals); the lattice stays float32. An ordered structure
stores one atomic number per site; a disordered one also lists, per (site, element) entry, its site
and occupancy. `from_arrays(to_arrays(c))` is `c` to within that rounding.
"""
from __future__ import annotations

import numpy as np

from .crystal import Crystal

COORD_STEPS = 65536


def to_arrays(crystal: Crystal) -> dict:
    """{"lattice": 9 float32, "frac": 3n uint16, "z": uint8 per entry, "site", "occupancy" (float64: a formula
    of fractional occupancies reads as before storage)} for one crystal;
    `site` and `occupancy` are empty for an ordered structure (one entry per site, occupancy 1)."""
    frac = np.round(np.mod(crystal.frac_coords, 1.0) * COORD_STEPS).astype(np.int64) % COORD_STEPS
    site, z, _ = crystal.species_arrays()
    occupancy = np.array([v for s in crystal.species for v in s.values()], np.float64)  # not species_arrays' float32
    ordered = crystal.is_ordered
    return {"lattice": crystal.lattice.astype(np.float32).ravel(), "frac": frac.astype(np.uint16).ravel(),
            "z": z.astype(np.uint8),
            "site": np.zeros(0, np.uint16) if ordered else site.astype(np.uint16),
            "occupancy": np.zeros(0, np.float64) if ordered else occupancy.astype(np.float64)}


def from_arrays(id_: str, lattice, frac, z, site=(), occupancy=()) -> Crystal:
    """The Crystal that `to_arrays` stored (coordinates on its 1/65536 grid)."""
    frac = np.asarray(frac, np.float64).reshape(-1, 3) / COORD_STEPS
    z = np.asarray(z, np.int64)
    if len(site) == 0:
        species = [{int(n): 1.0} for n in z]
    else:
        species = [{} for _ in range(len(frac))]
        for s, n, occ in zip(np.asarray(site, np.int64), z, np.asarray(occupancy, np.float64)):
            species[s][int(n)] = float(occ)
    return Crystal(id=id_, lattice=np.asarray(lattice, np.float64).reshape(3, 3), frac_coords=frac, species=species)
