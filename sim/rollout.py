"""Rolling out the scripted experts: one episode, many in parallel processes, success tables.

    steps, success = rollout_episode(env, expert, seed)      # steps: key -> (T, ...) arrays
    rates = success_rates(["push"], ["expert", "poor"], episodes=100, workers=2)

Episode e of a run uses env seed `seed + e` and expert seed `seed + e`, so any episode can
be replayed on its own. Parallel runs split episodes over worker processes (spawned, each
building its own env); results do not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np

from robot_rl import keys


def rollout_episode(
    env,
    expert,
    seed: int,
    record: bool = True,
    execution_noise: float = 0.0,
    steps_after_success: int = 0,
) -> tuple[dict[str, np.ndarray], bool]:
    """Run `expert` in `env` from reset(seed) until termination or truncation.

    Recorded per step t: the observation o_t, the action a_t taken from it, the reward r_t and
    terminal flag that followed. Returns ({} when record=False, success of the last step).

    execution_noise > 0 (DART, Laskey et al. 2017): the arm executes the expert's joint targets
    plus Gaussian noise of this std (rad; the gripper command is left alone) while the expert's
    own action is what is recorded, so the demonstrations show how the expert recovers from the
    small errors a cloned policy makes. The noise is drawn from a generator seeded by `seed`.
    Such data is for behaviour cloning: the recorded action is not the one that moved the arm.

    steps_after_success > 0: the expert keeps going for that many steps past the first success
    (the env must be made with terminate_on_success=False), so the demonstration shows the
    task finished (the cube pushed home, held up) rather than stopped at the success threshold,
    where a cloned policy then learns to stop too. The episode's last step is marked terminal
    when it is a success; the returned success is that of the last step.
    """
    if steps_after_success < 0:
        raise ValueError(f"steps_after_success must be >= 0, got {steps_after_success}")
    if steps_after_success and env.config.terminate_on_success:
        raise ValueError("steps_after_success needs an env made with terminate_on_success=False")
    obs, info = env.reset(seed=seed)
    expert.reset()
    rows: dict[str, list] = {}
    success = False
    noise_rng = np.random.default_rng([seed, 0xDA27])
    remaining = None  # steps still to run after the first success
    while True:
        action = expert.act(obs)
        executed = action
        if execution_noise > 0:
            executed = np.array(action, dtype=np.float64, copy=True)
            executed[:-1] += noise_rng.normal(0.0, execution_noise, executed.shape[0] - 1)
        next_obs, reward, terminated, truncated, info = env.step(executed)
        success, finished = bool(info["is_success"]), False
        if steps_after_success:
            if remaining is None and success:
                remaining = steps_after_success
            elif remaining is not None:
                remaining -= 1
            finished = remaining == 0
            terminated = finished and success
        if record:
            for key, value in obs.items():
                rows.setdefault(key, []).append(value)
            rows.setdefault(keys.ACTION, []).append(np.asarray(action, dtype=np.float32))
            rows.setdefault(keys.REWARD, []).append(np.float32(reward))
            rows.setdefault(keys.TERMINAL, []).append(bool(terminated))
        obs = next_obs
        if terminated or truncated or finished:
            break
    return {k: np.stack(v) for k, v in rows.items()}, success


def _run_chunk(args) -> list[bool]:
    task, quality, seeds, overrides = args
    import sim
    from sim.experts import make_expert

    env = sim.make_env(task, **overrides)
    results = []
    for seed in seeds:
        expert = make_expert(task, quality, seed=seed)
        results.append(rollout_episode(env, expert, seed, record=False)[1])
    env.close()
    return results


def success_flags(
    task: str, quality: str, episodes: int, seed: int = 0, workers: int = 1, overrides: dict | None = None
) -> list[bool]:
    """Success of each of `episodes` seeded expert episodes, split over `workers` processes."""
    seeds = list(range(seed, seed + episodes))
    overrides = overrides or {}
    if workers <= 1:
        return _run_chunk((task, quality, seeds, overrides))
    chunks = [seeds[i::workers] for i in range(workers)]
    with mp.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(_run_chunk, [(task, quality, c, overrides) for c in chunks])
    by_seed = {}
    for chunk, part in zip(chunks, parts):
        by_seed.update(zip(chunk, part))
    return [by_seed[s] for s in seeds]
