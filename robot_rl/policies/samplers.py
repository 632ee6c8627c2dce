"""Samplers: turn a denoising network into an action sequence.

All samplers work in normalized action space on (B, Tp, A) tensors and call
`denoise(x, t) -> network output` (t an int timestep, broadcast over the batch).

* FastDDIM: deterministic DDIM (eta = 0) with its per-step coefficients precomputed as Python
  floats. It computes exactly diffusers' DDIMScheduler.step update (timestep spacing, clipping
  of the predicted x0 and the final alpha included; a test holds it to diffusers' output), but
  costs two fused multiply-adds per step instead of ~48 us of scheduler bookkeeping.
* DiffusersSampler: any diffusers scheduler (DDIM, DPM-Solver++, DDPM) stepped as diffusers does.
* Consistency: the one-step / few-step sampler of a consistency-distilled student.

Warm start (FastDDIM only): successive chunks overlap in time, so instead of starting from pure
noise the previous chunk, shifted by the Ta steps executed since, is re-noised to the timestep at
which the last `k` steps of the schedule begin, and only those k steps are run:

    schedule (10 steps):  t = 90 80 70 60 50 40 30 20 10 0
    cold start:           x ~ N(0, I) at t=90, 10 network calls
    warm start, k = 3:    x = sqrt(ab_20) * shift(prev) + sqrt(1 - ab_20) * eps, then 20 -> 10 -> 0: 3 calls
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoise = Callable[[torch.Tensor, int], torch.Tensor]


def make_scheduler(
    kind: str, num_train_timesteps: int, beta_schedule: str, prediction_type: str, clip_sample: bool
):
    """The diffusers scheduler for `kind` in {ddpm, ddim, dpm_solver}; DDPM is also the training one."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    common = dict(
        num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule, prediction_type=prediction_type
    )
    if kind == "ddpm":
        return DDPMScheduler(**common, clip_sample=clip_sample)
    if kind == "ddim":
        return DDIMScheduler(**common, clip_sample=clip_sample, set_alpha_to_one=True, steps_offset=0)
    if kind == "dpm_solver":
        # DPM-Solver++ has no clip_sample. Without a bound on its x0 estimates, a policy trained
        # with clipping (the default) samples actions hundreds of times its range: at the noisiest
        # step of the cosine schedule, x0 = (x - sqrt(1 - a) eps) / sqrt(a) divides by a ~ 1e-4.
        # Thresholding with sample_max_value 1 clips x0 to [-1, 1] as DDIM does; lambda_min_clipped
        # is diffusers' advice for the cosine schedule (it skips the steps of lowest log-SNR).
        bounded = dict(thresholding=True, sample_max_value=1.0) if clip_sample else {}
        cosine = dict(lambda_min_clipped=-5.1) if beta_schedule == "squaredcos_cap_v2" else {}
        return DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2, **bounded, **cosine
        )
    raise ValueError(f"unknown scheduler kind {kind!r} (known: ddpm, ddim, dpm_solver)")


class FastDDIM:
    """Deterministic DDIM with precomputed coefficients; matches diffusers.DDIMScheduler (eta=0)."""

    def __init__(self, alphas_cumprod: torch.Tensor, num_steps: int, prediction_type: str, clip_sample: bool):
        num_train = len(alphas_cumprod)
        if not 1 <= num_steps <= num_train:
            raise ValueError(f"num_steps must be in [1, {num_train}], got {num_steps}")
        if prediction_type not in ("epsilon", "sample"):
            raise ValueError(f"prediction_type must be epsilon or sample, got {prediction_type!r}")
        # Timesteps exactly as diffusers lays them out ('leading' spacing, steps_offset 0).
        step = num_train // num_steps
        self.timesteps = [i * step for i in reversed(range(num_steps))]
        ab = alphas_cumprod.to(torch.float32)
        self.coefs = []
        for t in self.timesteps:
            prev = t - step
            a_t = ab[t]
            a_prev = ab[prev] if prev >= 0 else torch.tensor(1.0)
            # Same float32 arithmetic as diffusers, so the results agree to rounding.
            self.coefs.append(
                (float(a_t**0.5), float((1 - a_t) ** 0.5), float(a_prev**0.5), float((1 - a_prev) ** 0.5))
            )
        self.prediction_type = prediction_type
        self.clip_sample = clip_sample
        self.alphas_cumprod = ab

    def __call__(self, denoise: Denoise, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Run steps start..end of the schedule from x (noise at timesteps[start])."""
        for t, (sa, s1m, sap, s1mp) in zip(self.timesteps[start:], self.coefs[start:]):
            out = denoise(x, t)
            if self.prediction_type == "epsilon":
                eps = out
                x0 = (x - s1m * eps) / sa
            else:
                x0 = out
                eps = (x - sa * x0) / s1m
            if self.clip_sample:
                x0 = x0.clamp(-1.0, 1.0)
            x = sap * x0 + s1mp * eps
        return x

    def warm(self, denoise: Denoise, shifted: torch.Tensor, k: int, generator: torch.Generator | None = None):
        """Re-noise `shifted` to the start of the last k steps and run only those."""
        k = max(1, min(k, len(self.timesteps)))
        start = len(self.timesteps) - k
        sa, s1m = self.coefs[start][0], self.coefs[start][1]
        noise = torch.randn(shifted.shape, generator=generator, device=shifted.device, dtype=shifted.dtype)
        return self(denoise, sa * shifted + s1m * noise, start=start)


class DiffusersSampler:
    """Steps a diffusers scheduler (DDIM, DPM-Solver++, DDPM) through its own `step`."""

    def __init__(self, scheduler, num_steps: int):
        self.scheduler = scheduler
        self.num_steps = num_steps

    def __call__(
        self, denoise: Denoise, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        self.scheduler.set_timesteps(self.num_steps)
        for t in self.scheduler.timesteps:
            out = denoise(x, int(t))
            kwargs = (
                {"generator": generator} if "generator" in self.scheduler.step.__code__.co_varnames else {}
            )
            x = self.scheduler.step(out, t, x, **kwargs).prev_sample
        return x


class Consistency:
    """Multistep consistency sampling: x0 = f(x, t_i); re-noise x0 to t_{i+1}; repeat.

    `denoise` here is the student's consistency function f(x, t) -> x0 estimate.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, num_steps: int):
        num_train = len(alphas_cumprod)
        if not 1 <= num_steps <= num_train:
            raise ValueError(f"num_steps must be in [1, {num_train}], got {num_steps}")
        # Evenly spaced from the noisiest timestep down; one step uses t = T - 1 only.
        self.timesteps = [int(round((num_train - 1) * (1 - i / num_steps))) for i in range(num_steps)]
        self.alphas_cumprod = alphas_cumprod.to(torch.float32)

    def __call__(self, f: Denoise, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x0 = x
        for i, t in enumerate(self.timesteps):
            x0 = f(x, t)
            if i + 1 < len(self.timesteps):
                ab = self.alphas_cumprod[self.timesteps[i + 1]]
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        return x0.clamp(-1.0, 1.0)
