"""The hashing losses reward codes that rank same-class photos first."""

from __future__ import annotations

import pytest
import torch

from fph_desktop.model.fph import HashOutput
from fph_desktop.train.losses import HashLoss, dpsh_loss, quantization_loss, triplet_loss

LABELS = torch.tensor([0, 0, 1, 1])


def codes(same_class_agree: bool) -> torch.Tensor:
    a, b = torch.ones(8), -torch.ones(8)
    return torch.stack([a, a, b, b]) if same_class_agree else torch.stack([a, b, a, b])


def test_triplet_loss_is_zero_once_classes_are_apart_and_positive_when_mixed():
    assert triplet_loss(codes(True), LABELS, margin=2.0) == 0
    # Mixed: each anchor's positive is 32 away; one negative is 0 away (loss 32 - 0 + 2 = 34), the
    # other 32 away (32 - 32 + 2 = 2); the mean over these active triplets is 18.
    assert triplet_loss(codes(False), LABELS, margin=2.0) == pytest.approx(18.0)


def test_dpsh_and_softmax_prefer_separated_codes():
    assert dpsh_loss(codes(True), LABELS) < dpsh_loss(codes(False), LABELS)
    torch.manual_seed(0)
    loss = HashLoss("softmax", bits=8, num_classes=2, quant_weight=0.0)
    optimizer = torch.optim.SGD(loss.parameters(), lr=0.5)
    for _ in range(50):  # the classifier learns to read separated codes; mixed ones stay ambiguous
        value, _ = loss(HashOutput(u=codes(True)), LABELS)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    good = loss(HashOutput(u=codes(True)), LABELS)[0]
    bad = loss(HashOutput(u=codes(False)), LABELS)[0]
    assert good < 0.1 < bad


def test_quantisation_term_and_auxiliary_heads_add_up():
    u = torch.full((4, 8), 0.5)
    assert quantization_loss(u) == pytest.approx(0.25)
    loss = HashLoss("triplet", bits=8, num_classes=2, quant_weight=1.0, aux_weight=0.5)
    total, parts = loss(HashOutput(u=u, aux={"vertical": codes(False)}), LABELS)
    assert set(parts) == {"final", "vertical"}
    assert total.item() == pytest.approx(parts["final"] + 0.5 * parts["vertical"])
