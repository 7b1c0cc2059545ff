"""Losses: adversarial (vanilla, lsgan, wgan-gp), reconstruction (l1, huber),
and the optional chroma regulariser against greyish output."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def discriminator_loss(mode: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """What the discriminator (critic) minimises; real -> 1, fake -> 0."""
    if mode == "vanilla":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
    if mode == "lsgan":
        return 0.5 * (F.mse_loss(real_logits, torch.ones_like(real_logits))
                      + F.mse_loss(fake_logits, torch.zeros_like(fake_logits)))
    if mode == "wgan-gp":
        return fake_logits.mean() - real_logits.mean()
    raise ValueError(f"unknown GAN mode {mode!r}")


def generator_adversarial_loss(mode: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """What the generator minimises to fool the discriminator."""
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if mode == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if mode == "wgan-gp":
        return -fake_logits.mean()
    raise ValueError(f"unknown GAN mode {mode!r}")


def gradient_penalty(critic: nn.Module, lightness: torch.Tensor, real_ab: torch.Tensor,
                     fake_ab: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad critic(x_hat)||_2 - 1)^2 on
    random interpolates of real and fake chroma, per sample."""
    mix = torch.rand(real_ab.shape[0], 1, 1, 1, device=real_ab.device, dtype=real_ab.dtype)
    interpolate = (mix * real_ab + (1.0 - mix) * fake_ab).requires_grad_(True)
    scores = critic(lightness, interpolate)
    (gradient,) = torch.autograd.grad(scores.sum(), interpolate, create_graph=True)
    norms = gradient.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def reconstruction_loss(kind: str, predicted_ab: torch.Tensor, target_ab: torch.Tensor,
                        a_quantile: float | torch.Tensor = 0.5) -> torch.Tensor:
    """`a_quantile` (l1 only): the quantile of a* the prediction fits; 0.5 is
    plain L1, whose minimiser is the median. A tensor of shape [N, 1, 1, 1]
    gives each sample its own quantile."""
    is_median = bool((torch.as_tensor(a_quantile) == 0.5).all())
    if kind == "l1":
        if is_median:
            return F.l1_loss(predicted_ab, target_ab)
        return 0.5 * (pinball_loss(predicted_ab[:, :1], target_ab[:, :1], a_quantile)
                      + F.l1_loss(predicted_ab[:, 1:], target_ab[:, 1:]))
    if not is_median:
        raise ValueError(f"an a* quantile other than 0.5 needs the l1 reconstruction loss, not {kind!r}")
    if kind == "huber":
        # delta in normalised ab units: 0.1 * 110 = 11 Lab units.
        return F.smooth_l1_loss(predicted_ab, target_ab, beta=0.1)
    raise ValueError(f"unknown reconstruction loss {kind!r}")


def pinball_loss(predicted: torch.Tensor, target: torch.Tensor, quantile: float | torch.Tensor) -> torch.Tensor:
    """Mean pinball (quantile) loss, doubled so that quantile 0.5 equals L1:
    under-predictions cost 2q per unit, over-predictions 2(1 - q). A `quantile`
    tensor broadcasts against `predicted` (one quantile per channel)."""
    error = target - predicted
    return 2.0 * torch.maximum(quantile * error, (quantile - 1.0) * error).mean()


def chroma_regulariser(predicted_ab: torch.Tensor) -> torch.Tensor:
    """-E[sqrt(a^2 + b^2)]: rewards saturated output (weighted by --chroma-weight).
    The epsilon keeps the gradient finite at a = b = 0."""
    return -torch.sqrt(predicted_ab.pow(2).sum(dim=1) + 1e-6).mean()
