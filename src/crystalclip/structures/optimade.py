"""A structure as an OPTIMADE structures resource (v1.2 `structures` entry), so results drop into
OPTIMADE tools. Partially occupied sites become one species per distinct mixture (`concentration`)."""
from __future__ import annotations

from .crystal import Crystal, element_symbol


def to_optimade(crystal: Crystal, id_: str | None = None) -> dict:
    """{"id", "type": "structures", "attributes": {...}} of one structure (Cartesian positions in Å)."""
    cartesian = crystal.frac_coords @ crystal.lattice
    names, species = [], {}
    for site in crystal.species:
        parts = sorted(site.items(), key=lambda item: -item[1])
        name = "".join(element_symbol(z) for z, _ in parts) if len(parts) > 1 or parts[0][1] < 1 - 1e-6 else \
            element_symbol(parts[0][0])
        if len(parts) > 1 or parts[0][1] < 1 - 1e-6:
            name += "_" + "_".join(f"{occ:.3g}" for _, occ in parts)
        names.append(name)
        species.setdefault(name, {"name": name, "chemical_symbols": [element_symbol(z) for z, _ in parts],
                                  "concentration": [round(float(occ), 6) for _, occ in parts]})
    elements = sorted({element_symbol(z) for site in crystal.species for z in site})
    return {
        "id": id_ or crystal.id,
        "type": "structures",
        "attributes": {
            "chemical_formula_reduced": _reduced_formula(crystal),
            "elements": elements,
            "nelements": len(elements),
            "nsites": len(crystal),
            "lattice_vectors": crystal.lattice.round(6).tolist(),
            "dimension_types": [1, 1, 1],
            "nperiodic_dimensions": 3,
            "cartesian_site_positions": cartesian.round(6).tolist(),
            "species_at_sites": names,
            "species": list(species.values()),
            "structure_features": [] if crystal.is_ordered else ["disorder"],
        },
    }


def _reduced_formula(crystal: Crystal) -> str:
    """OPTIMADE's spelling: elements in alphabetical order, integer proportions, 1 left out ("ClNa")."""
    import warnings

    from pymatgen.core import Composition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reduced, _ = Composition(crystal.composition()).get_reduced_composition_and_factor()
    amounts = {str(el): n for el, n in reduced.items()}
    if not all(abs(n - round(n)) < 1e-6 for n in amounts.values()):
        return crystal.reduced_formula()  # a disordered site: proportions are not integers
    return "".join(f"{el}{'' if round(n) == 1 else int(round(n))}" for el, n in sorted(amounts.items()))
