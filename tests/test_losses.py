"""Every loss against a hand computation (plain Python loops), plus gradients, alignment, collapse,
and the global batch under data parallelism (2 gloo processes vs one process)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crystalclip.losses import LOSSES, get_loss

B, D = 3, 4
SHARED_IDS = [0, 1, 0]  # rows 0 and 2 share one text


def unit_rows(seed: int, rows: int = B, dim: int = D) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def positives(ids, rows):
    if ids is None:
        return [[1.0 if i == j else 0.0 for j in range(rows)] for i in range(rows)]
    return [[1.0 if ids[i] == ids[j] else 0.0 for j in range(rows)] for i in range(rows)]


def cosines(c, t):
    return [[sum(c[i][k] * t[j][k] for k in range(len(c[i]))) for j in range(len(t))] for i in range(len(c))]


def cross_entropy_rows(logits, pos):
    """Mean over rows of -Σ_j target_ij log softmax_ij, target spread evenly over the positives."""
    total = 0.0
    for row, prow in zip(logits, pos):
        lse = math.log(sum(math.exp(v) for v in row))
        total -= sum(p / sum(prow) * (v - lse) for v, p in zip(row, prow))
    return total / len(logits)


def symmetric_ce(logits, pos):
    transpose = [list(col) for col in zip(*logits)]
    pos_t = [list(col) for col in zip(*pos)]
    return (cross_entropy_rows(logits, pos) + cross_entropy_rows(transpose, pos_t)) / 2


def ref_infonce(c, t, scale, ids):
    cos = cosines(c, t)
    return symmetric_ce([[scale * v for v in row] for row in cos], positives(ids, len(c)))


def ref_cosine(c, t, ids, margin=0.0):
    cos, pos = cosines(c, t), positives(ids, len(c))
    pairs = [1 - cos[i][j] for i in range(len(c)) for j in range(len(c)) if pos[i][j]]
    others = [max(0.0, cos[i][j] - margin) for i in range(len(c)) for j in range(len(c)) if not pos[i][j]]
    return sum(pairs) / len(pairs) + (sum(others) / len(others) if others else 0.0)


def ref_cosface(c, t, ids, margin=0.5, s=3.0):
    cos, pos = cosines(c, t), positives(ids, len(c))
    logits = [[s * (cos[i][j] - margin * pos[i][j]) for j in range(len(c))] for i in range(len(c))]
    return symmetric_ce(logits, pos)


def ref_arcface(c, t, ids, margin=0.5, s=3.0):
    cos, pos = cosines(c, t), positives(ids, len(c))
    logits = [[s * (math.cos(math.acos(cos[i][j]) + margin) if pos[i][j] else cos[i][j])
               for j in range(len(c))] for i in range(len(c))]
    return symmetric_ce(logits, pos)


def ref_siglip(c, t, scale, ids, bias=-10.0):
    cos, pos = cosines(c, t), positives(ids, len(c))
    total = 0.0
    for i in range(len(c)):
        for j in range(len(c)):
            z = 1.0 if pos[i][j] else -1.0
            total -= math.log(1.0 / (1.0 + math.exp(-z * (scale * cos[i][j] + bias))))
    return total / len(c)


def run(name, c, t, logit_scale, ids, **params):
    loss = get_loss(name, **params)
    ids_t = None if ids is None else torch.tensor(ids)
    return loss(torch.tensor(c), torch.tensor(t), torch.tensor(logit_scale, dtype=torch.float64), ids_t).item()


@pytest.mark.parametrize("ids", [None, SHARED_IDS])
def test_losses_match_hand_computation(ids):
    c, t = unit_rows(0), unit_rows(1)
    cl, tl = c.tolist(), t.tolist()
    scale = 7.5
    assert run("infonce", c, t, scale, ids) == pytest.approx(ref_infonce(cl, tl, scale, ids), abs=1e-10)
    assert run("cosine", c, t, scale, ids) == pytest.approx(ref_cosine(cl, tl, ids), abs=1e-10)
    assert run("cosine", c, t, scale, ids, negative_margin=0.2) == pytest.approx(
        ref_cosine(cl, tl, ids, margin=0.2), abs=1e-10)
    assert run("cosface", c, t, scale, ids) == pytest.approx(ref_cosface(cl, tl, ids), abs=1e-10)
    assert run("cosface", c, t, scale, ids, margin=0.3, scale=10.0) == pytest.approx(
        ref_cosface(cl, tl, ids, margin=0.3, s=10.0), abs=1e-10)
    assert run("arcface", c, t, scale, ids) == pytest.approx(ref_arcface(cl, tl, ids), abs=1e-10)
    assert run("arcface", c, t, scale, ids, margin=0.2, scale=5.0) == pytest.approx(
        ref_arcface(cl, tl, ids, margin=0.2, s=5.0), abs=1e-10)
    assert run("siglip", c, t, scale, ids) == pytest.approx(ref_siglip(cl, tl, scale, ids), abs=1e-10)
    assert run("siglip", c, t, scale, ids, bias_init=-2.0) == pytest.approx(
        ref_siglip(cl, tl, scale, ids, bias=-2.0), abs=1e-10)


def test_fixed_scale_losses_ignore_logit_scale_and_infonce_uses_it():
    c, t = unit_rows(2), unit_rows(3)
    for name in ("cosine", "cosface", "arcface"):
        assert run(name, c, t, 1.0, None) == run(name, c, t, 50.0, None)
    assert run("infonce", c, t, 1.0, None) != pytest.approx(run("infonce", c, t, 50.0, None))


def test_shared_text_changes_the_targets():
    """A shared text is a positive, not a false negative: the loss differs from identity targets."""
    c, t = unit_rows(4), unit_rows(5)
    for name in LOSSES:
        assert run(name, c, t, 5.0, SHARED_IDS) != pytest.approx(run(name, c, t, 5.0, None), abs=1e-6)


def test_gradients_are_finite_even_for_exactly_aligned_and_opposite_pairs():
    c = torch.tensor(unit_rows(6, 4, 5))
    t = c.clone()
    t[1] = -c[1]  # one anti-aligned pair, the others exactly aligned (cos = ±1: acos's edges)
    for name in LOSSES:
        crystal, text = c.clone().requires_grad_(), t.clone().requires_grad_()
        scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
        loss_fn = get_loss(name).double()
        loss = loss_fn(crystal, text, scale, torch.tensor([0, 1, 2, 0]))
        loss.backward()
        assert torch.isfinite(loss)
        for tensor in (crystal, text, scale, *loss_fn.parameters()):
            assert tensor.grad is not None and torch.isfinite(tensor.grad).all(), name
        # a loss that ignores the temperature still gives it a (zero) gradient: DDP needs one
        assert (scale.grad == 0).item() == (not loss_fn.uses_logit_scale), name


@pytest.mark.parametrize("name", ["infonce", "cosface", "arcface", "siglip"])
def test_loss_decreases_as_pairs_align(name):
    c = torch.tensor(unit_rows(7, 8, 16))
    noise = torch.tensor(unit_rows(8, 8, 16))
    losses = []
    for alpha in (0.0, 0.5, 1.0, 2.0, 5.0):
        text = F.normalize(noise + alpha * c, dim=1)
        losses.append(get_loss(name)(c, text, torch.tensor(10.0, dtype=torch.float64)).item())
    assert all(a > b for a, b in zip(losses, losses[1:])), losses


def test_arcface_pair_logit_keeps_falling_past_pi_minus_margin():
    """A pair turned from aligned (θ = 0) to opposite (θ = π) must cost more and more; plain
    cos(θ + m) would start rewarding it again past π - m."""
    margin = 0.5
    loss_fn = get_loss("arcface", margin=margin)
    crystal = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    thetas = np.linspace(0, math.pi, 60)
    losses = []
    for theta in thetas:
        text = torch.tensor([[math.cos(theta), math.sin(theta), 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        losses.append(loss_fn(crystal, text, torch.tensor(1.0)).item())
    assert all(a < b for a, b in zip(losses, losses[1:]))
    assert (thetas > math.pi - margin).sum() >= 5  # the grid does cover the fallback region


def test_cosine_loss_is_not_minimised_by_collapse():
    point = F.normalize(torch.ones(4, 4, dtype=torch.float64), dim=1)
    collapsed = get_loss("cosine")(point, point.clone(), torch.tensor(1.0))
    separated = get_loss("cosine")(torch.eye(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64),
                                   torch.tensor(1.0))
    assert collapsed.item() == pytest.approx(1.0)  # pairs perfect, every negative at cos 1
    assert separated.item() == pytest.approx(0.0)
    # a margin tolerates negatives up to that cosine
    assert get_loss("cosine", negative_margin=0.5)(point, point, torch.tensor(1.0)).item() == pytest.approx(0.5)


def test_infonce_without_ids_is_clip():
    c, t = torch.tensor(unit_rows(9, 6, 8)), torch.tensor(unit_rows(10, 6, 8))
    logits = 4.0 * c @ t.T
    labels = torch.arange(6)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert get_loss("infonce")(c, t, torch.tensor(4.0)).item() == pytest.approx(expected.item(), abs=1e-12)


def test_get_loss_registry():
    assert set(LOSSES) == {"infonce", "cosine", "cosface", "arcface", "siglip"}
    with pytest.raises(ValueError, match="known: infonce, cosine"):
        get_loss("triplet")
    with pytest.raises(TypeError, match="'temperature'.*its parameters: margin, scale"):
        get_loss("cosface", temperature=0.1)
    with pytest.raises(TypeError, match="parameters: none"):
        get_loss("infonce", margin=0.2)
    with pytest.raises(ValueError, match="scale"):
        get_loss("arcface", scale=0.0)
    with pytest.raises(ValueError, match="margin"):
        get_loss("cosface", margin=-0.1)
    # SigLIP's bias is learnable and per instance; the others have no parameters
    a, b = get_loss("siglip"), get_loss("siglip", bias_init=-5.0)
    assert [p.item() for p in a.parameters()] == [-10.0] and [p.item() for p in b.parameters()] == [-5.0]
    assert all(not list(get_loss(name).parameters()) for name in LOSSES if name != "siglip")


# --------------------------------------------------------------------------------------------------
# global negatives under data parallelism

DDP_IDS = [0, 1, 2, 3, 3, 5, 6, 0]  # ids 3 and 0 are shared between the two halves
DDP_CASES = [  # (rows of rank 0, text ids)
    (4, DDP_IDS),
    (4, None),
    (5, DDP_IDS),  # uneven shards
]


def _ddp_setup():
    """The same encoders and inputs in every process."""
    torch.manual_seed(0)
    enc_c, enc_t = torch.nn.Linear(6, 5).double(), torch.nn.Linear(7, 5).double()
    xc, xt = torch.randn(8, 6, dtype=torch.float64), torch.randn(8, 7, dtype=torch.float64)
    return enc_c, enc_t, xc, xt


def _ddp_step(name, rows, ids):
    """One loss + backward on ``rows`` of the batch; what the comparison needs."""
    enc_c, enc_t, xc, xt = _ddp_setup()
    loss_fn = get_loss(name).double()
    scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    crystal = F.normalize(enc_c(xc[rows]), dim=1)
    text = F.normalize(enc_t(xt[rows]), dim=1)
    crystal.retain_grad()
    text.retain_grad()
    loss = loss_fn(crystal, text, scale, None if ids is None else torch.tensor(ids)[rows])
    loss.backward()
    return {
        "loss": loss.detach(),
        "crystal_grad": crystal.grad, "text_grad": text.grad,
        "params": {f"{i}.{k}": p.grad for i, enc in enumerate((enc_c, enc_t)) for k, p in enc.named_parameters()},
        "shared": [scale.grad] + [p.grad for p in loss_fn.parameters()],
    }


def _ddp_worker(rank, init_method, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        results = {}
        for case, (split, ids) in enumerate(DDP_CASES):
            rows = slice(0, split) if rank == 0 else slice(split, 8)
            for name in LOSSES:
                results[case, name] = _ddp_step(name, rows, ids)
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_see_the_global_batch(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(f"file://{tmp_path}/rendezvous", str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for case, (split, ids) in enumerate(DDP_CASES):
        shards = [slice(0, split), slice(split, 8)]
        for name in LOSSES:
            single = _ddp_step(name, slice(0, 8), ids)
            for rank, shard in enumerate(shards):
                got = ranks[rank][case, name]
                where = f"{name}, case {case}, rank {rank}"
                # every rank computes the global loss ...
                torch.testing.assert_close(got["loss"], single["loss"], atol=1e-6, rtol=0, msg=where)
                # ... and gets the single-process gradient of its own rows
                torch.testing.assert_close(got["crystal_grad"], single["crystal_grad"][shard], atol=1e-9, rtol=0)
                torch.testing.assert_close(got["text_grad"], single["text_grad"][shard], atol=1e-9, rtol=0)
                # parameters every rank uses in full (logit_scale, SigLIP's bias) get the full gradient
                for g, s in zip(got["shared"], single["shared"], strict=True):
                    torch.testing.assert_close(g, s, atol=1e-9, rtol=0, msg=where)
            # encoder gradients summed over ranks are the single-process gradients
            for key, grad in single["params"].items():
                summed = ranks[0][case, name]["params"][key] + ranks[1][case, name]["params"][key]
                torch.testing.assert_close(summed, grad, atol=1e-9, rtol=0, msg=f"{name}, case {case}, {key}")
