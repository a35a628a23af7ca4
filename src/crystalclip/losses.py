"""Contrastive losses as modules: ``get_loss(name, **params)(crystal, text, logit_scale, text_ids=None)``.

crystal, text: (B, D) unit rows, row i of each is a pair. logit_scale: the model's (exponentiated,
clamped) learnable temperature. text_ids: optional (B,) ints naming each row's text; rows that share
a text (one publication title over a series of structures) are all positives for each other instead
of false negatives.

Under data parallelism every loss first gathers the features of all ranks (``gather_features``), so
the whole global batch serves as negatives; in a single process that is a no-op.
"""
from __future__ import annotations

import inspect
import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LOSSES", "get_loss", "gather_features", "positive_mask", "ContrastiveLoss", "InfoNCE", "CosineLoss",
           "CosFace", "ArcFace", "SigLIP"]


# --------------------------------------------------------------------------------------------------
# global batch


def _all_gather(tensor: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (first dimensions ``sizes``); all_gather needs equal shapes, so pad."""
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return [part[:size] for part, size in zip(parts, sizes)]


def gather_features(crystal: torch.Tensor, text: torch.Tensor, text_ids: torch.Tensor | None = None):
    """(crystal, text, text_ids) of the global batch: every rank's rows, in rank order.

    A no-op unless torch.distributed is initialised with more than one rank. all_gather carries no
    gradient, so this rank's own slot is replaced by its local tensors (open_clip's trick): the
    gradient flows to the local rows only.

    Gradient convention: every rank computes the same global loss L, and the gradient it gets for
    its local rows is exactly dL/d(those rows), as in one process holding the global batch. Encoder
    parameter gradients summed over ranks therefore equal the single-process gradient; DDP *averages*
    them, i.e. the encoders see that gradient divided by the world size. Parameters that every rank
    uses in full (logit_scale, SigLIP's bias) get the single-process gradient on each rank, which the
    average leaves unchanged.

    Ranks may hold different batch sizes. All ranks must agree on whether text_ids is None; with None
    the global batch gets identity targets (every row is a distinct pair). text_ids must be global
    (e.g. dataset indices of the texts) so a text shared across ranks has one id.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return crystal, text, text_ids
    rank, world = dist.get_rank(), dist.get_world_size()
    size = torch.tensor([len(crystal)], device=crystal.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    crystals = _all_gather(crystal.detach(), sizes)
    texts = _all_gather(text.detach(), sizes)
    crystals[rank], texts[rank] = crystal, text
    if text_ids is not None:
        text_ids = torch.cat(_all_gather(text_ids, sizes))
    return torch.cat(crystals), torch.cat(texts), text_ids


# --------------------------------------------------------------------------------------------------
# losses


def positive_mask(text_ids: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """(B, B) 0/1 in ``like``'s dtype and device, 1 where row i and column j are a pair: the
    diagonal, or rows with the same text id."""
    if text_ids is None:
        return torch.eye(len(like), dtype=like.dtype, device=like.device)
    return (text_ids[:, None] == text_ids[None, :]).to(like.dtype)


def _symmetric_cross_entropy(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean of the crystal->text (rows) and text->crystal (columns) cross-entropies, the target
    spread evenly over each row's positives (the mask is symmetric, so columns use the same)."""
    targets = positive / positive.sum(1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class ContrastiveLoss(nn.Module):
    """Base: forward gathers the global batch, then ``compute`` the loss on it.

    A loss with ``uses_logit_scale = False`` still adds 0 · logit_scale, so the model's temperature
    gets a zero gradient instead of none: DDP fails on parameters that take no part in the loss.
    """

    uses_logit_scale = True
    last_batch = 0  # rows the last call compared: the global batch under data parallelism

    def __init__(self):  # no parameters: get_loss reads each loss's own from its signature
        super().__init__()

    def forward(self, crystal: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                text_ids: torch.Tensor | None = None) -> torch.Tensor:
        crystal, text, text_ids = gather_features(crystal, text, text_ids)
        self.last_batch = len(crystal)
        positive = positive_mask(text_ids, crystal)
        loss = self.compute(crystal, text, logit_scale, positive)
        if not self.uses_logit_scale:
            loss = loss + 0.0 * logit_scale
        return loss

    def compute(self, crystal, text, logit_scale, positive) -> torch.Tensor:
        raise NotImplementedError


class InfoNCE(ContrastiveLoss):
    """Symmetric InfoNCE (CLIP, CLaC): cross-entropy over rows and columns of logit_scale · C Tᵀ."""

    def compute(self, crystal, text, logit_scale, positive):
        return _symmetric_cross_entropy(logit_scale * crystal @ text.T, positive)


class CosineLoss(ContrastiveLoss):
    """CLAMP's cosine objective with in-batch negatives; ignores logit_scale.

    Maximising the paired cosine alone (mean 1 - cos) is minimised by mapping everything to one
    point, so negatives are pushed apart too, as in torch's CosineEmbeddingLoss:
    mean over pairs of (1 - cos) + mean over non-pairs of relu(cos - negative_margin).
    """

    uses_logit_scale = False

    def __init__(self, negative_margin: float = 0.0):
        super().__init__()
        if not -1.0 <= negative_margin <= 1.0:
            raise ValueError(f"negative_margin must be in [-1, 1], got {negative_margin}")
        self.negative_margin = float(negative_margin)

    def compute(self, crystal, text, logit_scale, positive):
        cos = crystal @ text.T
        loss = (1 - cos)[positive > 0].mean()
        negatives = positive == 0
        if negatives.any():  # a batch of one text has no negatives
            loss = loss + F.relu(cos[negatives] - self.negative_margin).mean()
        return loss


class CosFace(ContrastiveLoss):
    """Additive cosine margin (CLaSP): logits s·(cos - m) on pairs, s·cos elsewhere, symmetric
    cross-entropy. CLaSP fixes the scale s, so logit_scale is ignored."""

    uses_logit_scale = False

    def __init__(self, margin: float = 0.5, scale: float = 3.0):
        super().__init__()
        _check_margin_scale(margin, scale)
        self.margin, self.scale = float(margin), float(scale)

    def compute(self, crystal, text, logit_scale, positive):
        logits = self.scale * (crystal @ text.T - self.margin * positive)
        return _symmetric_cross_entropy(logits, positive)


class ArcFace(ContrastiveLoss):
    """Additive angular margin: logits s·cos(θ + m) on pairs, s·cos θ elsewhere, symmetric
    cross-entropy; the fixed scale s replaces logit_scale.

    Past θ = π - m, cos(θ + m) would rise again and reward anti-aligned pairs, so there the pair
    logit continues as s·(cos θ - (1 - cos m)), which meets s·cos(θ + m) = -s at θ = π - m and keeps
    falling with θ. cos is clamped inside (-1, 1) so acos and its gradient stay finite.
    """

    uses_logit_scale = False

    def __init__(self, margin: float = 0.5, scale: float = 3.0):
        super().__init__()
        _check_margin_scale(margin, scale)
        if not margin < math.pi:
            raise ValueError(f"margin must be below π, got {margin}")
        self.margin, self.scale = float(margin), float(scale)

    def compute(self, crystal, text, logit_scale, positive):
        cos = (crystal @ text.T).clamp(-1 + 1e-7, 1 - 1e-7)
        with_margin = torch.cos(torch.acos(cos) + self.margin)
        with_margin = torch.where(cos > math.cos(math.pi - self.margin), with_margin,
                                  cos - (1 - math.cos(self.margin)))
        logits = self.scale * torch.where(positive > 0, with_margin, cos)
        return _symmetric_cross_entropy(logits, positive)


class SigLIP(ContrastiveLoss):
    """Sigmoid loss (SigLIP): every (crystal, text) entry is its own binary task,
    -Σ_ij log σ(z_ij · (logit_scale · c_i·t_j + b)) / B with z = +1 for pairs, -1 otherwise.

    The bias b is a parameter of this module (init -10 as in the paper, so training starts from
    "mostly negatives"); the optimiser must include ``loss.parameters()``.
    """

    def __init__(self, bias_init: float = -10.0):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))

    def compute(self, crystal, text, logit_scale, positive):
        logits = logit_scale * crystal @ text.T + self.bias
        return -F.logsigmoid((2 * positive - 1) * logits).sum() / len(crystal)


def _check_margin_scale(margin: float, scale: float) -> None:
    if not margin >= 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")


LOSSES: dict[str, type[ContrastiveLoss]] = {
    "infonce": InfoNCE,
    "cosine": CosineLoss,
    "cosface": CosFace,
    "arcface": ArcFace,
    "siglip": SigLIP,
}


def get_loss(name: str, **params) -> ContrastiveLoss:
    """A new loss module by name; ``params`` are its constructor arguments."""
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}") from None
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TypeError(f"loss {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                        f"its parameters: {', '.join(known) or 'none'}")
    return cls(**params)
