import pytest
import torch

from retint.model.losses import (
    chroma_regulariser,
    discriminator_loss,
    generator_adversarial_loss,
    gradient_penalty,
    reconstruction_loss,
)
from retint.model.networks.patchgan import PatchGAN


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "wgan-gp"])
def test_discriminator_loss_prefers_correct_labels(mode):
    confident = torch.full((2, 1, 4, 4), 5.0)
    good = discriminator_loss(mode, confident, -confident)
    bad = discriminator_loss(mode, -confident, confident)
    assert good < bad
    assert generator_adversarial_loss(mode, confident) < generator_adversarial_loss(mode, -confident)


def test_vanilla_loss_at_zero_logits_is_log_two():
    zeros = torch.zeros(1, 1, 2, 2)
    assert abs(float(discriminator_loss("vanilla", zeros, zeros)) - 0.693147) < 1e-5


def test_gradient_penalty_is_finite_and_differentiable():
    critic = PatchGAN(norm="none")
    lightness = torch.rand(2, 1, 64, 64)
    penalty = gradient_penalty(critic, lightness, torch.rand(2, 2, 64, 64), torch.rand(2, 2, 64, 64))
    penalty.backward()
    assert torch.isfinite(penalty)
    assert all(torch.isfinite(p.grad).all() for p in critic.parameters() if p.grad is not None)


def test_reconstruction_losses():
    target = torch.zeros(1, 2, 4, 4)
    assert float(reconstruction_loss("l1", target + 0.5, target)) == pytest.approx(0.5)
    # Huber is quadratic below beta = 0.1 and linear above it.
    assert float(reconstruction_loss("huber", target + 0.05, target)) == pytest.approx(0.5 * 0.05**2 / 0.1)
    assert float(reconstruction_loss("huber", target + 0.5, target)) == pytest.approx(0.5 - 0.05)


def test_chroma_regulariser_rewards_saturation_with_finite_gradient_at_grey():
    grey = torch.zeros(1, 2, 4, 4, requires_grad=True)
    value = chroma_regulariser(grey)
    value.backward()
    assert torch.isfinite(grey.grad).all()
    assert float(chroma_regulariser(torch.full((1, 2, 4, 4), 0.5))) < float(value.detach())
