"""CGCNN encoder and graph batching: shapes, batch independence, invariances, occupancy, gradients."""
import json
import pickle
from functools import lru_cache

import numpy as np
import pytest
import torch

from crystalclip.data.batching import GraphBatch, collate_graphs
from crystalclip.graphs import CrystalGraph, build_graph, cgcnn_element_table, gaussian_expand
from crystalclip.models import CGCNN, CGCNNConfig
from crystalclip.structures.cif import parse_cif

from .conftest import mp40_table


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is fastest, and immune to OpenMP oversubscription on a busy machine
    (two threads on two shared cores made these tests ~60x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@lru_cache
def mp40_graphs(n: int = 24) -> tuple[CrystalGraph, ...]:
    rows = mp40_table().head(n)
    return tuple(build_graph(parse_cif(cif, name=mid)[0]) for mid, cif in zip(rows["material_id"], rows["cif"]))


def make_model(atom_features="cgcnn92", seed=0, **kw) -> CGCNN:
    torch.manual_seed(seed)
    model = CGCNN(CGCNNConfig(atom_features=atom_features, **kw))
    # non-trivial BatchNorm running statistics, so eval mode is not the identity normalisation
    model.train()
    with torch.no_grad():
        model(collate_graphs(mp40_graphs()))
    return model.eval()


def permuted(g: CrystalGraph, perm: np.ndarray) -> CrystalGraph:
    """The same crystal with site perm[k] renamed k."""
    new = np.argsort(perm).astype(np.int32)
    return CrystalGraph(g.num_sites, new[g.edge_src], new[g.edge_dst], g.edge_dist.copy(),
                        new[g.species_site], g.species_z.copy(), g.species_occ.copy(), g.id)


def test_collate_offsets_on_mp40():
    graphs = mp40_graphs()
    batch = collate_graphs(graphs)
    assert batch.num_crystals == len(graphs) == len(batch)
    assert batch.num_sites == sum(g.num_sites for g in graphs)
    assert batch.num_edges == sum(g.num_edges for g in graphs)
    for t in (batch.species_site, batch.species_z, batch.edge_src, batch.edge_dst, batch.site_crystal):
        assert t.dtype == torch.long
    assert batch.edge_dist.dtype == batch.species_occ.dtype == torch.float32
    site0 = e0 = s0 = 0
    for b, g in enumerate(graphs):
        n, e, s = g.num_sites, g.num_edges, len(g.species_z)
        assert (batch.site_crystal[site0:site0 + n] == b).all()
        assert np.array_equal(batch.edge_src[e0:e0 + e].numpy() - site0, g.edge_src)
        assert np.array_equal(batch.edge_dst[e0:e0 + e].numpy() - site0, g.edge_dst)
        assert np.array_equal(batch.edge_dist[e0:e0 + e].numpy(), g.edge_dist)
        assert np.array_equal(batch.species_site[s0:s0 + s].numpy() - site0, g.species_site)
        assert np.array_equal(batch.species_z[s0:s0 + s].numpy(), g.species_z)
        assert np.array_equal(batch.species_occ[s0:s0 + s].numpy(), g.species_occ)
        site0, e0, s0 = site0 + n, e0 + e, s0 + s
    # picklable (DataLoader workers), and .to / .pin_memory-style mapping keeps the fields
    again = pickle.loads(pickle.dumps(batch))
    assert isinstance(again, GraphBatch) and torch.equal(again.edge_src, batch.edge_src)
    assert pickle.loads(pickle.dumps(collate_graphs)) is collate_graphs
    moved = batch.to("cpu")
    assert moved.num_crystals == batch.num_crystals and torch.equal(moved.edge_dst, batch.edge_dst)
    empty = collate_graphs([])
    assert empty.num_crystals == 0 and empty.num_sites == 0 and empty.num_edges == 0


def test_collate_memory_mapped_store(tmp_path):
    from crystalclip.graphs import GraphStore, save_graphs

    graphs = mp40_graphs()[:5]
    store = GraphStore.open(save_graphs(list(graphs), tmp_path / "g"))
    a, b = collate_graphs([store[i] for i in range(5)]), collate_graphs(graphs)
    assert torch.equal(a.edge_src, b.edge_src) and torch.equal(a.edge_dist, b.edge_dist)
    a.edge_dist += 1.0  # the tensors own their memory (the store is read-only)


@pytest.mark.parametrize("atom_features", ["cgcnn92", "embedding"])
def test_shapes_config_and_batch_independence(atom_features):
    graphs = mp40_graphs()
    model = make_model(atom_features, atom_dim=32, num_layers=2)
    assert model.out_dim == 32
    cfg = CGCNNConfig.from_dict(json.loads(json.dumps(model.config.to_dict())))
    assert cfg == model.config
    with torch.no_grad():
        full = model(collate_graphs(graphs))
        assert full.shape == (len(graphs), 32) and torch.isfinite(full).all()
        for k in (0, 7, len(graphs) - 1):  # alone vs inside the batch
            alone = model(collate_graphs([graphs[k]]))
            torch.testing.assert_close(alone[0], full[k], rtol=1e-5, atol=1e-5)
        sub = model(collate_graphs(graphs[3:9][::-1]))  # other company, other order
        torch.testing.assert_close(sub, full[3:9].flip(0), rtol=1e-5, atol=1e-5)
        assert torch.equal(model(collate_graphs(graphs)), full)  # deterministic


def test_site_permutation_invariance():
    graphs = mp40_graphs()
    model = make_model()
    rng = np.random.default_rng(0)
    shuffled = [permuted(g, rng.permutation(g.num_sites)) for g in graphs]
    with torch.no_grad():
        a = model(collate_graphs(graphs))
        b = model(collate_graphs(shuffled))  # edges no longer grouped by centre: generic path
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_regular_and_generic_paths_agree():
    graphs = mp40_graphs()[:6]
    model = make_model()
    batch = collate_graphs(graphs)
    v = torch.randn(batch.num_sites, model.out_dim)
    u = model.expand_distances(batch.edge_dist)
    conv = model.convs[0]
    with torch.no_grad():
        regular = conv(v, batch.edge_src, batch.edge_dst, u, per_site=12)
        generic = conv(v, batch.edge_src, batch.edge_dst, u)
    torch.testing.assert_close(regular, generic, rtol=1e-5, atol=1e-5)


def test_gaussians_match_graphs_module():
    model = CGCNN()
    d = torch.linspace(0.5, 8.0, 500)
    torch.testing.assert_close(model.expand_distances(d), gaussian_expand(d, 0.0, 8.0, 0.2), rtol=0, atol=1e-6)


def test_occupancy_weighted_site_features():
    # site 0: {Si: 0.5, Al: 0.5}, site 1: O; a two-site "crystal" at 1.6 Å
    g = CrystalGraph(
        num_sites=2,
        edge_src=np.array([0, 1], np.int32), edge_dst=np.array([1, 0], np.int32),
        edge_dist=np.array([1.6, 1.6], np.float32),
        species_site=np.array([0, 0, 1], np.int32), species_z=np.array([14, 13, 8], np.int32),
        species_occ=np.array([0.5, 0.5, 1.0], np.float32),
    )
    batch = collate_graphs([g])
    table = torch.from_numpy(cgcnn_element_table().copy())
    model = make_model("cgcnn92")
    x = model.site_features(batch)
    torch.testing.assert_close(x[0], 0.5 * (table[14] + table[13]))
    torch.testing.assert_close(x[1], table[8])
    torch.testing.assert_close(model.embedding(x)[0], model.embedding(0.5 * (table[14] + table[13])))
    emb = make_model("embedding")
    rows = emb.element_embedding.weight
    torch.testing.assert_close(emb.site_features(batch)[0], 0.5 * (rows[14] + rows[13]))
    with torch.no_grad():
        assert emb(batch).shape == (1, 64) and model(batch).shape == (1, 64)


@pytest.mark.parametrize("atom_features", ["cgcnn92", "embedding"])
def test_gradients_reach_all_parameters(atom_features):
    graphs = mp40_graphs()[:8]
    model = make_model(atom_features).train()
    out = model(collate_graphs(graphs))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_config_validation():
    with pytest.raises(ValueError):
        CGCNNConfig(atom_features="onehot")
    with pytest.raises(ValueError):
        CGCNNConfig(pooling="max")
    with pytest.raises(ValueError):
        CGCNNConfig.from_dict({"atom_dim": 64, "hidden": 3})
    assert CGCNN().num_gaussians == 41
    assert CGCNN(num_layers=5).config.num_layers == 5
