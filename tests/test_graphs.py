"""crystalclip.graphs: CGCNN graphs checked against pymatgen on real Materials Project structures."""
from __future__ import annotations

import csv
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalclip.element_features import BLOCKS, NUM_FEATURES, block_slices, cgcnn_element_table
from crystalclip.graphs import (
    CrystalGraph,
    GraphConfig,
    GraphStore,
    build_graph,
    gaussian_expand,
    save_graphs,
    site_features,
)
from crystalclip.structures.crystal import Crystal, StructureError

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
MP40 = DATA / "mp40" / "captions_1000.csv"
# a spread of cells: small hexagonal, long-c layered, triclinic-ish, 40-atom
IDS = ["mp-641778", "mp-10412", "mp-11562", "mp-1104674"]


@pytest.fixture(scope="module")
def mp40_cifs() -> dict[str, str]:
    csv.field_size_limit(sys.maxsize)
    with open(MP40, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    chosen = {row["material_id"]: row["cif"] for row in rows if row["material_id"] in IDS}
    # plus the largest cells among the first 200 (most atoms, so most images / ties)
    big = sorted(rows[:200], key=lambda row: -row["cif"].count("\n"))[:3]
    chosen.update({row["material_id"]: row["cif"] for row in big})
    assert set(IDS) <= set(chosen)
    return chosen


@pytest.fixture(scope="module")
def mp40_structures(mp40_cifs) -> dict[str, Structure]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fractional coordinates rounded to ideal values"
        return {k: Structure.from_str(cif, fmt="cif") for k, cif in mp40_cifs.items()}


def assert_graph_matches_pymatgen(graph: CrystalGraph, structure: Structure, config: GraphConfig, centres=None):
    """Per centre: our sorted distances = pymatgen's k nearest, and each of our edges is a real pair."""
    centers, neighbors, _, dists = structure.get_neighbor_list(config.cutoff)
    keep = dists > 1e-8
    centers, neighbors, dists = centers[keep], neighbors[keep], dists[keep]
    for atom in range(len(structure)) if centres is None else centres:
        theirs = dists[centers == atom]
        theirs_j = neighbors[centers == atom]
        theirs_sorted = np.sort(theirs)[: config.max_neighbors]
        mask = graph.edge_src == atom
        mine, mine_j = graph.edge_dist[mask], graph.edge_dst[mask]
        assert np.all(np.diff(mine) >= 0), "edges of a centre are sorted by distance"
        np.testing.assert_allclose(mine, theirs_sorted, atol=1e-5)
        available = Counter(zip(theirs_j.tolist(), np.round(theirs, 4).tolist()))
        used = Counter(zip(mine_j.tolist(), np.round(mine.astype(np.float64), 4).tolist()))
        assert not used - available, f"atom {atom}: edges that are not pymatgen pairs: {used - available}"


def test_edges_equal_pymatgen_on_mp40(mp40_structures):
    config = GraphConfig()
    for mid, structure in mp40_structures.items():
        graph = build_graph(Crystal.from_pymatgen(structure, id=mid), config)
        assert graph.num_sites == len(structure) and graph.id == mid
        assert graph.edge_src.dtype == np.int32 and graph.edge_dst.dtype == np.int32
        assert graph.edge_dist.dtype == np.float32
        assert np.all(np.diff(graph.edge_src) >= 0)
        assert np.bincount(graph.edge_src, minlength=len(structure)).tolist() == [12] * len(structure)
        assert_graph_matches_pymatgen(graph, structure, config)


def test_parse_cif_path_gives_the_same_graph(mp40_cifs, mp40_structures):
    from crystalclip.structures.cif import parse_cif

    mid = "mp-641778"
    ours = build_graph(parse_cif(mp40_cifs[mid], name=mid)[0])
    assert ours.num_sites == 24
    assert_graph_matches_pymatgen(ours, mp40_structures[mid], GraphConfig())


def test_other_configs_match_pymatgen(mp40_structures):
    structure = mp40_structures["mp-11562"]
    for config in (GraphConfig(cutoff=6.0, max_neighbors=30), GraphConfig(cutoff=5.0, max_neighbors=4)):
        graph = build_graph(Crystal.from_pymatgen(structure), config)
        assert_graph_matches_pymatgen(graph, structure, config)


def bcc_primitive(a: float) -> Crystal:
    lattice = 0.5 * a * np.array([[-1.0, 1, 1], [1, -1, 1], [1, 1, -1]])
    return Crystal("bcc", lattice, np.zeros((1, 3)), [{26: 1.0}])


def test_small_bcc_cells_have_eight_nearest_at_the_right_distance():
    a = 2.5
    conventional = Crystal("bcc2", np.eye(3) * a, np.array([[0, 0, 0], [0.5, 0.5, 0.5]]), [{26: 1.0}] * 2)
    for crystal in (bcc_primitive(a), conventional):
        graph = build_graph(crystal)
        for atom in range(len(crystal)):
            d = graph.edge_dist[graph.edge_src == atom]
            assert len(d) == 12
            np.testing.assert_allclose(d[:8], np.sqrt(3) / 2 * a, atol=1e-5)  # 8 body diagonals
            np.testing.assert_allclose(d[8:], a, atol=1e-5)  # then 4 of the 6 cube-edge neighbours
        if len(crystal) == 1:
            assert set(graph.edge_dst.tolist()) == {0}  # every neighbour is an image of the one site
        else:
            # the 8 nearest of each site are images of the other site
            for atom in (0, 1):
                assert set(graph.edge_dst[graph.edge_src == atom][:8].tolist()) == {1 - atom}


def test_cell_far_smaller_than_cutoff_keeps_every_image():
    # simple cubic 3 Å: 6 + 12 + 8 + 6 + 24 + 24 = 80 neighbours inside 8 Å, fewer than max_neighbors
    crystal = Crystal("sc", np.eye(3) * 3.0, np.zeros((1, 3)), [{29: 1.0}])
    graph = build_graph(crystal, GraphConfig(max_neighbors=100))
    assert graph.num_edges == 80
    shells = Counter(np.round(graph.edge_dist.astype(np.float64) ** 2 / 9).astype(int).tolist())
    assert shells == {1: 6, 2: 12, 3: 8, 4: 6, 5: 24, 6: 24}


def test_coordinates_outside_the_cell_are_wrapped():
    a = 2.5
    shifted = Crystal("bcc2", np.eye(3) * a, np.array([[-1.0, 2, 0], [1.5, -0.5, 3.5]]), [{26: 1.0}] * 2)
    graph = build_graph(shifted)
    np.testing.assert_allclose(graph.edge_dist[:8], np.sqrt(3) / 2 * a, atol=1e-5)


def test_isolated_atom_gets_its_nearest_images_beyond_the_cutoff():
    # one Xe in a 20 Å cell: nothing within 8 Å; within 16 Å neither; within 32 Å its 6 face images
    # at 20 Å and 12 edge images at 28.3 Å, of which the 12 nearest are kept
    crystal = Crystal("xe", np.eye(3) * 20.0, np.zeros((1, 3)), [{54: 1.0}])
    graph = build_graph(crystal)
    assert graph.num_edges == 12 and set(graph.edge_dst.tolist()) == {0}
    np.testing.assert_allclose(graph.edge_dist[:6], 20.0)
    np.testing.assert_allclose(graph.edge_dist[6:], 20.0 * np.sqrt(2), rtol=1e-6)


def ag2te_in_a_large_cell() -> Crystal:
    """12 atoms (Ag8Te4) in an 8,950 Å^3 cell, shaped like the real one that was refused: an Ag7Te3
    cluster at the origin, an Ag and a Te alone at face centres, >10 Å from everything else."""
    a = 8950.0 ** (1 / 3)
    cluster = np.array([[0, 0, 0], [2.9, 0, 0], [0, 2.9, 0], [0, 0, 2.9], [-2.9, 0, 0], [0, -2.9, 0],
                        [0, 0, -2.9], [1.7, 1.7, 1.7], [-1.7, -1.7, 1.7], [1.7, -1.7, -1.7]]) / a
    lonely = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    frac = np.vstack([cluster, lonely]) % 1.0
    species = [{52: 1.0}] + [{47: 1.0}] * 6 + [{52: 1.0}, {52: 1.0}, {47: 1.0}, {47: 1.0}, {52: 1.0}]
    return Crystal("Ag2Te", np.eye(3) * a, frac, species)


def test_molecule_in_a_huge_cell_is_legal():
    crystal = ag2te_in_a_large_cell()
    structure = crystal.to_pymatgen()
    graph = build_graph(crystal)
    assert graph.num_sites == 12
    assert np.all(np.diff(graph.edge_src) >= 0)
    # the cluster: its neighbours within the cutoff, as pymatgen finds them (fewer than 12)
    assert_graph_matches_pymatgen(graph_of(graph, range(10)), structure, GraphConfig(), centres=range(10))
    # the two lone atoms: their 12 nearest within 16 Å (2 x cutoff), sorted, all beyond 8 Å
    for atom in (10, 11):
        mine = graph.edge_dist[graph.edge_src == atom]
        theirs = np.sort([n.nn_distance for n in structure.get_neighbors(structure[atom], 16.0)])[:12]
        assert len(mine) == len(theirs) > 0 and mine.min() > 8.0
        np.testing.assert_allclose(mine, theirs, atol=1e-5)


def graph_of(graph: CrystalGraph, centres) -> CrystalGraph:
    keep = np.isin(graph.edge_src, list(centres))
    return CrystalGraph(graph.num_sites, graph.edge_src[keep], graph.edge_dst[keep], graph.edge_dist[keep],
                        graph.species_site, graph.species_z, graph.species_occ)


def test_overlapping_sites_follow_the_reader_rule():
    """Closer than 0.1 Å: one atom listed twice merges, an H on a heavier atom goes, split sites
    (alternatives of at most one atom) stay, different elements stacked are refused."""
    fe = [0.5, 0.5, 0.5]
    two_o = Crystal("o", np.eye(3) * 4.0, np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], fe]),
                    [{8: 1.0}, {8: 1.0}, {26: 1.0}])
    graph = build_graph(two_o)
    assert graph.num_sites == 2 and graph.species_z.tolist() == [8, 26]
    np.testing.assert_array_equal(graph.edge_dist, build_graph(
        Crystal("o", np.eye(3) * 4.0, np.array([[0.0, 0.0, 0.0], fe]), [{8: 1.0}, {26: 1.0}])).edge_dist)
    h_on_o = Crystal("h", np.eye(3) * 4.0, np.array([[0.0, 0.0, 0.0], [0.005, 0.0, 0.0], fe]),
                     [{8: 1.0}, {1: 1.0}, {26: 1.0}])
    assert build_graph(h_on_o).species_z.tolist() == [8, 26]
    split = Crystal("s", np.eye(3) * 4.0, np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], fe]),
                    [{8: 0.5}, {8: 0.5}, {26: 1.0}])
    assert build_graph(split).num_sites == 3
    stacked = Crystal("x", np.eye(3) * 4.0, np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], fe]),
                      [{8: 1.0}, {26: 1.0}, {26: 1.0}])
    with pytest.raises(StructureError, match=r"^site 0 \(O\) and site 1 \(Fe\) overlap \(0.04 Å apart\): different"):
        build_graph(stacked)
    thin = Crystal("thin", np.diag([0.05, 4.0, 4.0]), np.zeros((1, 3)), [{26: 1.0}])
    with pytest.raises(StructureError, match="from its own periodic image"):
        build_graph(thin)


def test_numpy_search_and_vesin_give_the_same_graph(mp40_structures, monkeypatch):
    """Small cells take the dense numpy search, large ones vesin: both give the same edges."""
    from crystalclip import graphs

    crystals = [Crystal.from_pymatgen(s, id=k) for k, s in mp40_structures.items()]
    crystals += [rocksalt_disordered(), bcc_primitive(2.5), ag2te_in_a_large_cell()]
    for config in (GraphConfig(), GraphConfig(cutoff=5.0, max_neighbors=4), GraphConfig(cutoff=6.0, max_neighbors=30)):
        dense = [build_graph(c, config) for c in crystals]
        monkeypatch.setattr(graphs, "DENSE_LIMIT", 0)
        cell_list = [build_graph(c, config) for c in crystals]
        monkeypatch.undo()
        for a, b in zip(dense, cell_list):
            np.testing.assert_array_equal(a.edge_src, b.edge_src)
            np.testing.assert_allclose(a.edge_dist, b.edge_dist, atol=1e-5)


def test_degenerate_or_broken_lattices_raise():
    flat = np.array([[3.0, 0, 0], [0, 3.0, 0], [3.0, 3.0, 0]])
    with pytest.raises(StructureError, match="degenerate lattice"):
        build_graph(Crystal("flat", flat, np.zeros((1, 3)), [{26: 1.0}]))
    nan = np.eye(3) * np.nan
    with pytest.raises(StructureError):
        build_graph(Crystal("nan", nan, np.zeros((1, 3)), [{26: 1.0}]))
    with pytest.raises(StructureError):
        build_graph(Crystal("nanxyz", np.eye(3) * 3, np.full((1, 3), np.nan), [{26: 1.0}]))
    with pytest.raises(StructureError, match="no sites"):
        build_graph(Crystal("empty", np.eye(3) * 3, np.zeros((0, 3)), []))


def rocksalt_disordered() -> Crystal:
    lattice = np.eye(3) * 4.2
    frac = np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5],
                     [0, 0.5, 0.5], [0.5, 0.5, 0.5]])
    species = [{26: 0.5, 28: 0.5}, {8: 1.0}, {8: 1.0}, {8: 1.0}, {12: 1.0}, {12: 1.0}, {12: 0.7},
               {8: 0.9, 9: 0.1}]
    return Crystal("disordered", lattice, frac, species)


def test_partial_occupancy_site_features_are_the_weighted_mix():
    table = cgcnn_element_table()
    crystal = rocksalt_disordered()
    graph = build_graph(crystal)
    assert graph.species_site.tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7, 7]
    assert graph.species_z.tolist() == [26, 28, 8, 8, 8, 12, 12, 12, 8, 9]
    features = site_features(graph, table)
    assert features.shape == (8, NUM_FEATURES) and features.dtype == np.float32
    np.testing.assert_allclose(features[0], 0.5 * table[26] + 0.5 * table[28], atol=1e-7)
    np.testing.assert_allclose(features[1], table[8])
    np.testing.assert_allclose(features[6], 0.7 * table[12], atol=1e-7)
    np.testing.assert_allclose(features[7], 0.9 * table[8] + 0.1 * table[9], atol=1e-7)
    # same through pymatgen's disordered Structure
    structure = crystal.to_pymatgen()
    again = site_features(build_graph(Crystal.from_pymatgen(structure)), table)
    np.testing.assert_allclose(again, features)
    # ordered crystals: plain table rows
    ordered = build_graph(Crystal("nacl", np.eye(3) * 5.6, np.array([[0, 0, 0], [0.5, 0.5, 0.5]]),
                                  [{11: 1.0}, {17: 1.0}]))
    np.testing.assert_array_equal(site_features(ordered), table[[11, 17]])


def test_element_table_is_92_one_hot_blocks():
    table = cgcnn_element_table()
    assert table.shape == (119, 92) and NUM_FEATURES == 92 and table.dtype == np.float32
    assert sum(width for _, width in BLOCKS) == 92
    assert cgcnn_element_table() is table and not table.flags.writeable  # cached, read-only
    assert not table[0].any()
    slices = block_slices()
    block_sums = np.stack([table[:, s].sum(axis=1) for s in slices.values()], axis=1)
    assert set(np.unique(block_sums).tolist()) <= {0.0, 1.0}  # one-hot or missing (zero block)
    common = [1, 3, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 20, 22, 26, 29, 30, 47, 79, 82]
    assert (block_sums[common] == 1).all() and (table[common].sum(axis=1) == 9).all()
    assert (table[1:104].sum(axis=1) >= 6).all()  # every real element keeps most of its blocks

    def category(z, block):
        return int(np.argmax(table[z, slices[block]]))

    assert category(8, "group") == 15 and category(8, "period") == 1 and category(8, "block") == 1
    assert category(26, "group") == 7 and category(26, "period") == 3 and category(26, "block") == 2
    assert category(26, "valence_electrons") == 7  # 8 valence electrons
    assert category(6, "valence_electrons") == 3  # C: 4
    assert category(57, "group") == 18 and category(92, "group") == 18  # lanthanide / actinide
    assert category(64, "block") == 3
    assert category(9, "electronegativity") == 9 and category(55, "electronegativity") == 0
    assert table[2, slices["electronegativity"]].sum() == 0  # He: no Pauling electronegativity


def test_stored_element_categories_are_pymatgens():
    """The committed table is what pymatgen gives (else: python -m crystalclip.element_features)."""
    from crystalclip.element_features import MAX_Z, categories_from_pymatgen, stored_categories

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert stored_categories() == {z: categories_from_pymatgen(z) for z in range(1, MAX_Z + 1)}


def test_gaussian_expand():
    d = np.array([0.0, 1.0, 2.5, 7.9], dtype=np.float32)
    g = gaussian_expand(d)
    assert g.shape == (4, 41) and g.dtype == np.float32
    assert g[1, 5] == pytest.approx(1.0) and g[1, 6] == pytest.approx(np.exp(-1.0), rel=1e-5)
    np.testing.assert_allclose(g[2], np.exp(-((2.5 - 0.2 * np.arange(41)) ** 2) / 0.04), rtol=1e-5, atol=1e-7)
    assert gaussian_expand(np.zeros((2, 3))).shape == (2, 3, 41)
    assert gaussian_expand(d, 0.0, 6.0, 0.5).shape == (4, 13)
    torch = pytest.importorskip("torch")
    t = gaussian_expand(torch.tensor(d, requires_grad=True))
    assert isinstance(t, torch.Tensor) and t.shape == (4, 41)
    np.testing.assert_allclose(t.detach().numpy(), g, rtol=1e-5, atol=1e-7)


def test_store_round_trip(tmp_path, mp40_structures):
    crystals = [Crystal.from_pymatgen(s, id=k) for k, s in mp40_structures.items()]
    crystals += [rocksalt_disordered(), bcc_primitive(2.5)]
    config = GraphConfig(cutoff=7.0, max_neighbors=10)
    graphs = [build_graph(c, config) for c in crystals]
    directory = tmp_path / "cache" / "graphs"
    save_graphs(graphs, directory, config)
    store = GraphStore.open(directory)
    assert len(store) == len(graphs) and store.config == config
    for original, loaded in zip(graphs, store):
        assert loaded.num_sites == original.num_sites and loaded.id == original.id
        for name in ("edge_src", "edge_dst", "edge_dist", "species_site", "species_z", "species_occ"):
            mine, theirs = getattr(original, name), getattr(loaded, name)
            assert mine.dtype == theirs.dtype, name
            np.testing.assert_array_equal(mine, theirs, err_msg=name)
    assert store[-1].id == "bcc" and store[-1].num_sites == 1
    with pytest.raises(IndexError):
        store[len(graphs)]
    np.testing.assert_array_equal(site_features(store[-2]), site_features(graphs[-2]))
    # overwriting an existing store is atomic and leaves no temporary directories behind
    save_graphs(graphs[:2], directory, GraphConfig())
    assert len(GraphStore.open(directory)) == 2
    assert sorted(p.name for p in directory.parent.iterdir()) == ["graphs"]
    # an empty store is valid
    save_graphs([], tmp_path / "empty")
    assert len(GraphStore.open(tmp_path / "empty")) == 0
    with pytest.raises(FileNotFoundError):
        GraphStore.open(tmp_path / "nowhere")
