"""What has an RLPD run's critic learned? Q along demonstration episodes against their returns.

Loads the latest checkpoint of a `robot-rl train rlpd` run and, for the first --episodes
episodes of an episode store (the run's own --data, say), prints at a few steps of each
episode the ensemble-mean Q of the demo's action, Q of the actor's mode, and the discounted
return the demo actually got from there (sparse success reward and the run's --reward-offset,
as the learner saw it). A critic that learns tracks that return; a flat Q, or one above the
largest possible return, says why a run is not learning.

    .venv/bin/python bench/rlpd_critic_probe.py --run runs/rlpd --data push_poor20.zarr --episodes 6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from robot_rl.cli_types import positive_int

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a `robot-rl train rlpd` run directory")
    p.add_argument("--data", required=True, help="an episode store (demonstrations)")
    p.add_argument("--episodes", type=positive_int, default=6)
    args = p.parse_args(argv)

    import torch
    import yaml

    from robot_rl import keys
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.transitions import mc_returns
    from robot_rl.models.actor import ActorPolicy
    from robot_rl.models.critics import QEnsemble
    from robot_rl.training.checkpoint import load_checkpoint
    from robot_rl.training.online import STATE_KIND
    from robot_rl.training.rl_cli import learner_reward

    run = Path(args.run)
    saved = yaml.safe_load((run / "run.yaml").read_text())["run"]
    if saved.get("learner") != "rlpd":
        p.error(f"{run}: a {saved.get('learner')!r} run; this probe reads rlpd runs")
    latest = (run / "checkpoints" / "latest").read_text().strip()
    tensors, meta = load_checkpoint(run / "checkpoints" / latest, kind=STATE_KIND)
    policy = ActorPolicy.load(run / "policy")
    hidden = tuple(int(w) for w in str(saved["hidden"]).split(","))
    critic = QEnsemble(policy.obs_dim, policy.act_dim, hidden, int(saved["critics"]), layer_norm=True)
    prefix = "algo.critic."
    critic.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    gamma = float(saved["discount"])
    relabel = learner_reward(saved.get("reward", "sparse"), float(saved.get("reward_offset", 0.0)))

    store = EpisodeStore.open(args.data, mode="r")
    print(f"{run} at env step {meta['env_step']}; Q (demo action) / Q (actor's mode) / demo's return")
    for i in range(min(args.episodes, len(store))):
        ep = store.episode(i, (*policy.obs_keys, keys.ACTION, keys.REWARD, keys.TERMINAL))
        reward = relabel(ep)  # as the learner saw it
        with torch.no_grad():
            raw = {k: ep[k] for k in policy.obs_keys}
            obs = policy.encode(raw)
            demo = critic(obs, policy.from_env_action(torch.as_tensor(ep[keys.ACTION]), raw)).mean(0)
            mode = critic(obs, policy.actor.mode(obs)).mean(0)
        ret = mc_returns(reward, gamma)
        n = len(reward)
        steps = sorted({0, n // 2, max(n - 5, 0), n - 1})
        cells = "  ".join(f"t={t}: {demo[t]:.3f} / {mode[t]:.3f} / {ret[t]:.3f}" for t in steps)
        print(f"episode {i} ({'success' if ep[keys.TERMINAL][-1] else 'failure'}, {n} steps)  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
