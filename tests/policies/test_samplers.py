"""The precomputed-coefficient DDIM sampler computes what diffusers' DDIMScheduler computes."""

import pytest
import torch
from diffusers import DDIMScheduler

from robot_rl.policies.samplers import Consistency, FastDDIM


def _network():
    """A fixed nonlinear 'denoiser' standing in for the U-Net: the samplers see only its outputs."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(7, 7, generator=gen) * 0.3

    def denoise(x, t):
        return torch.tanh(x @ w) * (1 + t / 100.0)

    return denoise


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("steps", [1, 10, 16, 100])
def test_fast_ddim_matches_diffusers(prediction_type, clip, steps):
    ref = DDIMScheduler(
        num_train_timesteps=100,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=clip,
        prediction_type=prediction_type,
    )
    ref.set_timesteps(steps)
    fast = FastDDIM(ref.alphas_cumprod, steps, prediction_type, clip)
    assert fast.timesteps == [int(t) for t in ref.timesteps]
    denoise = _network()
    x0 = torch.randn(3, 16, 7, generator=torch.Generator().manual_seed(1))
    x = x0.clone()
    for t in ref.timesteps:
        x = ref.step(denoise(x, int(t)), t, x).prev_sample
    ours = fast(denoise, x0.clone())
    torch.testing.assert_close(ours, x, rtol=1e-5, atol=1e-5)


def test_warm_start_runs_only_the_last_k_steps():
    ab = DDIMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2").alphas_cumprod
    fast = FastDDIM(ab, 10, "epsilon", True)
    seen = []

    def denoise(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    out = fast.warm(denoise, torch.full((1, 16, 7), 0.5), k=3, generator=torch.Generator().manual_seed(0))
    assert seen == [20, 10, 0]
    # With a zero-noise prediction each step rescales toward x0 = x / sqrt(ab): the shifted chunk comes back.
    assert out.shape == (1, 16, 7)


def test_consistency_sampler_one_step_calls_the_network_once_at_the_last_timestep():
    ab = DDIMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2").alphas_cumprod
    seen = []

    def f(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    Consistency(ab, 1)(f, torch.randn(2, 16, 7))
    assert seen == [99]
    seen.clear()
    Consistency(ab, 2)(f, torch.randn(2, 16, 7))
    assert seen == [99, 50]
