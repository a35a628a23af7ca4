"""Contrastive losses, one signature: loss(crystal, text, logit_scale, text_ids=None) -> scalar.

crystal, text: (B, D) unit rows, row i of each is a pair. logit_scale: the (already exponentiated,
clamped) temperature. text_ids: optional (B,) ints naming each row's text; rows that share a text
(one publication title over a series of structures) are all positives for each other instead of
false negatives.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _targets(text_ids: torch.Tensor | None, batch: int, device) -> torch.Tensor:
    if text_ids is None:
        return torch.eye(batch, device=device)
    same = (text_ids[:, None] == text_ids[None, :]).float()
    return same / same.sum(1, keepdim=True)


def infonce(crystal: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
            text_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP, CLaC): cross-entropy over rows (crystal -> text) and columns."""
    logits = logit_scale * crystal @ text.T
    targets = _targets(text_ids, len(crystal), crystal.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T)) / 2


LOSSES = {"infonce": infonce}


def get_loss(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}") from None
