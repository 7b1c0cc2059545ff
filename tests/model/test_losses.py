import dataclasses

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


def test_a_quantile_tilts_only_a_and_its_minimiser_is_that_quantile():
    target = torch.zeros(1, 2, 4, 4)
    # 0.5 is plain L1.
    assert float(reconstruction_loss("l1", target + 0.5, target, a_quantile=0.5)) == pytest.approx(0.5)
    # q = 0.75: a* guessed too low costs 1.5 per unit, too high 0.5; b* stays L1.
    low = torch.stack([target[:, 0] - 0.4, target[:, 1]], dim=1)
    high = torch.stack([target[:, 0] + 0.4, target[:, 1]], dim=1)
    assert float(reconstruction_loss("l1", low, target, a_quantile=0.75)) == pytest.approx(0.5 * 1.5 * 0.4)
    assert float(reconstruction_loss("l1", high, target, a_quantile=0.75)) == pytest.approx(0.5 * 0.5 * 0.4)
    # Fitted to a two-valued a* (grass -0.2 on 60% of pixels, sand +0.1 on
    # 40%), L1 settles on grass and the 0.7 quantile on sand.
    truths = torch.tensor([-0.2] * 6 + [0.1] * 4).view(10, 1, 1, 1).expand(10, 2, 1, 1).contiguous()
    for quantile, expected in ((0.5, -0.2), (0.7, 0.1)):
        guess = torch.zeros(1, 2, 1, 1, requires_grad=True)
        optimiser = torch.optim.SGD([guess], lr=0.01)
        for _ in range(300):
            optimiser.zero_grad()
            reconstruction_loss("l1", guess.expand(10, 2, 1, 1), truths, a_quantile=quantile).backward()
            optimiser.step()
        assert float(guess[0, 0]) == pytest.approx(expected, abs=0.02)
    with pytest.raises(ValueError, match="l1"):
        reconstruction_loss("huber", target, target, a_quantile=0.6)


def test_a_quantile_per_sample_is_each_samples_own_loss():
    """--a-quantile-clean-only: damaged samples fit the median, clean ones the quantile."""
    target = torch.zeros(2, 2, 4, 4)
    low = target.clone()
    low[:, 0] -= 0.4  # a* guessed too low on both samples
    quantiles = torch.tensor([0.5, 0.75]).view(2, 1, 1, 1)
    mixed = float(reconstruction_loss("l1", low, target, a_quantile=quantiles))
    assert mixed == pytest.approx(0.5 * (1.0 * 0.4 + 1.5 * 0.4) / 2)
    assert float(reconstruction_loss("l1", low, target, a_quantile=torch.full((2, 1, 1, 1), 0.5))) \
        == pytest.approx(float(reconstruction_loss("l1", low, target)))
    with pytest.raises(ValueError, match="l1"):
        reconstruction_loss("huber", target, target, a_quantile=quantiles)


def test_clean_only_gives_damaged_samples_the_median():
    from retint.model.config import GeneratorConfig, TrainConfig
    from retint.model.train import a_quantile_per_sample

    degraded = torch.tensor([True, False, True])
    warm = TrainConfig(data=("photos",), generator=GeneratorConfig(), a_quantile=0.7)
    clean_only = dataclasses.replace(warm, a_quantile_on_damaged=False)
    assert a_quantile_per_sample(clean_only, degraded).flatten().tolist() == pytest.approx([0.5, 0.7, 0.5])
    assert a_quantile_per_sample(warm, degraded) == 0.7
    assert a_quantile_per_sample(clean_only, None) == 0.7


def test_chroma_regulariser_rewards_saturation_with_finite_gradient_at_grey():
    grey = torch.zeros(1, 2, 4, 4, requires_grad=True)
    value = chroma_regulariser(grey)
    value.backward()
    assert torch.isfinite(grey.grad).all()
    assert float(chroma_regulariser(torch.full((1, 2, 4, 4), 0.5))) < float(value.detach())
