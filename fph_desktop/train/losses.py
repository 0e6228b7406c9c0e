"""Hashing losses on the tanh outputs u: a normalised softmax (cosine classifier with a scale; the
default), plain softmax, triplet ranking (the reading's) and DPSH pairwise likelihood, each plus a
small quantisation term pulling |u| to 1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.fph import HashOutput
from .config import LOSSES  # noqa: E402

COSINE_SCALE = 16.0


def triplet_loss(u: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-all triplet loss on squared L2 distances, averaged over the triplets that still violate
    the margin (averaging over all valid ones lets easy triplets drown the signal)."""
    distances = torch.cdist(u, u).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=u.device)
    positive = same & ~eye
    negative = ~same
    valid = positive[:, :, None] & negative[:, None, :]  # (anchor, positive, negative)
    losses = F.relu(distances[:, :, None] - distances[:, None, :] + margin) * valid
    active = (losses > 1e-12).sum()
    if active == 0:
        return losses.sum() * 0.0
    return losses.sum() / active


def dpsh_loss(u: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pairwise likelihood (Li et al., DPSH 2016): -log p(s_ij | u_i, u_j) with p = sigmoid(u_i.u_j / 2)."""
    similar = (labels[:, None] == labels[None, :]).float()
    theta = 0.5 * u @ u.t()
    return (F.softplus(theta) - similar * theta).mean()


def quantization_loss(u: torch.Tensor) -> torch.Tensor:
    return (u.abs() - 1).pow(2).mean()


class HashLoss(nn.Module):
    """The training objective over the final head and (weight ``aux_weight``) the auxiliary heads."""

    def __init__(self, kind: str, bits: int, num_classes: int, quant_weight: float = 0.1, aux_weight: float = 1.0) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {kind!r}")
        self.kind = kind
        self.margin = bits / 4
        self.quant_weight = quant_weight
        self.aux_weight = aux_weight
        # Softmax over u: a linear classifier on the codes, trained alongside (not saved with the model).
        self.classifier = nn.Linear(bits, num_classes) if kind == "softmax" else None
        # Cosine: one learned proxy per class; logits are scaled cosines, so only u's direction (which
        # is what its sign keeps) is trained for, not its length.
        self.proxies = nn.Parameter(torch.randn(num_classes, bits) * 0.01) if kind == "cosine" else None

    def _one(self, u: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "triplet":
            ranking = triplet_loss(u, labels, self.margin)
        elif self.kind == "dpsh":
            ranking = dpsh_loss(u, labels)
        elif self.kind == "cosine":
            logits = COSINE_SCALE * F.normalize(u, dim=1) @ F.normalize(self.proxies, dim=1).t()
            ranking = F.cross_entropy(logits, labels)
        else:
            ranking = F.cross_entropy(self.classifier(u), labels)
        return ranking + self.quant_weight * quantization_loss(u)

    def forward(self, output: HashOutput, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        u = output.u.float()
        total = self._one(u, labels)
        parts = {"final": float(total.detach())}
        for name, aux_u in output.aux.items():
            aux = self._one(aux_u.float(), labels)
            parts[name] = float(aux.detach())
            total = total + self.aux_weight * aux
        return total, parts
