"""`robot-rl learn`: the learner of online RL on a robot (or on sim_robot_node), through ROS.

    robot-rl learn --algo dsrl --diffusion runs/bc/policy --out runs/push_dsrl \\
        --server tcp://127.0.0.1:5555 --policy push --bind tcp://127.0.0.1:5570 --insecure-loopback
    robot-rl serve --policy push=runs/push_dsrl/explorer --insecure-loopback --insecure-updates
    robot-rl bringup --policy push --learner tcp://127.0.0.1:5570 --reset sim

It writes the exploring policy the server must serve (<out>/explorer, robot_rl/policies/
explorer.py) unless it is already there, waits for the server to serve it, then trains on the
episodes the robot's policy node sends (robot_rl/training/robot_loop.py) and pushes new
weights to the server by hot update every --weights-every robot steps. Every episode received
is appended to --log-store (default <out>/episodes.zarr) with its intervention flags. The
learning curve (success of the robot's episodes against robot steps) is <out>/curve.csv/.png;
checkpoints and resume follow robot_rl/training/online.py: the same command continues a
killed run, and weight versions continue from what the server serves.

Keys (beyond loopback): --key is the learner's NAME.key_secret (it listens to robots with it
and pushes weights with it; list its public key in the server's --learners file),
--actors the robots allowed to send episodes, --server-public the server's NAME.key.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from robot_rl.cli_types import (
    float_in,
    fraction,
    int_at_least,
    non_negative_int,
    positive_float,
    positive_int,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robot_rl.training.cli import DEFAULT_STATE_KEYS
    from robot_rl.training.rl_cli import add_relative_to_argument, add_sac_arguments

    parser.add_argument("--algo", required=True, choices=["dsrl", "rlpd"], help="the online learner")
    parser.add_argument("--out", required=True, help="run directory (resumed when it holds a checkpoint)")
    parser.add_argument("--diffusion", default="", help="dsrl: the frozen diffusion policy directory")
    parser.add_argument("--data", default="", help="rlpd: episode store of offline data (demos)")
    parser.add_argument(
        "--obs-keys",
        default=None,
        help=f"rlpd: state keys (default: those of {','.join(DEFAULT_STATE_KEYS)} the data has)",
    )
    add_relative_to_argument(parser)
    parser.add_argument("--task", default="push", help="task name recorded in the log store")
    parser.add_argument(
        "--max-deviation",
        type=float,
        default=0.2,
        help="exploration bound: rad per joint from the base policy's action (0: none)",
    )
    parser.add_argument(
        "--noise-max", type=positive_float, default=1.5, help="dsrl: bound of the latent noise"
    )
    parser.add_argument("--hidden", default="256,256", help="MLP widths of actor and critics")
    parser.add_argument("--critics", type=int_at_least(2), default=2, help="critic ensemble size")
    parser.add_argument(
        "--env-steps", type=positive_int, default=20_000, help="robot time budget, in policy steps"
    )
    parser.add_argument("--utd", type=positive_int, default=4, help="gradient updates per robot transition")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument(
        "--learning-starts", type=non_negative_int, default=0, help="robot steps before any update"
    )
    parser.add_argument(
        "--weights-every", type=positive_int, default=50, help="robot steps between hot updates"
    )
    parser.add_argument("--checkpoint-every", type=positive_int, default=1000, help="robot steps")
    parser.add_argument(
        "--curve-every", type=int, default=200, help="robot steps between points of the success curve"
    )
    parser.add_argument("--discount", type=fraction, default=0.99)
    parser.add_argument(
        "--n-step",
        type=positive_int,
        default=1,
        help="rewards per TD target (n-step returns; 1: one-step TD)",
    )
    parser.add_argument(
        "--reward-offset",
        type=float_in(-math.inf),
        default=0.0,
        help="subtracted from every step's reward, robot and offline (1: -1 a step until success); "
        "the log store keeps the robot's rewards",
    )
    add_sac_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--log-store", default="", help="episode store of what the robot did (default <out>/episodes.zarr)"
    )
    parser.add_argument("--bind", default="tcp://127.0.0.1:5570", help="where robots send episodes")
    parser.add_argument("--server", default="tcp://127.0.0.1:5555", help="the inference server")
    parser.add_argument("--policy", default="push", help="the explorer's name on the inference server")
    parser.add_argument("--key", default="", help="the learner's NAME.key_secret (CURVE)")
    parser.add_argument("--actors", default="", help="allowed-keys file: robots that may send episodes")
    parser.add_argument("--server-public", default="", help="the inference server's NAME.key")
    parser.add_argument("--insecure-loopback", action="store_true", help="no keys on loopback endpoints")
    parser.add_argument(
        "--server-wait-s", type=positive_float, default=600.0, help="how long to wait for the server"
    )
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch
    import yaml

    from robot_rl.algorithms.sac import SAC
    from robot_rl.data.store import EpisodeStore
    from robot_rl.policies.explorer import CONFIG, Explorer
    from robot_rl.training.actor_link import LearnerLink
    from robot_rl.training.online import OnlineConfig, run_online
    from robot_rl.training.rl_cli import hidden_sizes, sac_config
    from robot_rl.training.robot_loop import RobotActors, episode_spec

    if args.key and not (args.actors and args.server_public):
        raise ValueError("--key needs --actors (robots allowed to send) and --server-public")
    if not args.key and not args.insecure_loopback:
        raise ValueError("give --key/--actors/--server-public, or --insecure-loopback on loopback endpoints")
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    hidden = hidden_sizes(args)
    offline, diffusion = None, None
    if args.algo == "dsrl":
        if not args.diffusion:
            raise ValueError("--algo dsrl needs --diffusion (the frozen diffusion policy)")
        if args.relative_to:
            raise ValueError(
                "--relative-to is for --algo rlpd: DSRL's actions are the diffusion policy's noise"
            )
        from robot_rl.algorithms.dsrl import DSRLConfig, noise_actor_policy
        from robot_rl.policies import load_policy

        diffusion = load_policy(args.diffusion)
        policy = noise_actor_policy(diffusion, DSRLConfig(noise_max=args.noise_max, hidden=hidden))
    else:
        if not args.data:
            raise ValueError("--algo rlpd needs --data (offline demonstrations: RLPD samples them 50/50)")
        from robot_rl.training.rl_cli import obs_keys_of, offline_buffer, policy_from_data

        namespace = argparse.Namespace(**vars(args), reward="sparse")
        offline, obs_keys = offline_buffer(namespace, obs_keys_of(args), args.n_step)
        policy = policy_from_data(offline, obs_keys, hidden, relative_to=args.relative_to)
    algo = SAC(policy, sac_config(args, hidden))

    explorer_dir = out / "explorer"
    if not (explorer_dir / CONFIG).exists():
        Explorer(policy, diffusion, args.max_deviation).save(explorer_dir)
        print(f"wrote the exploring policy {explorer_dir}")
    else:
        saved = yaml.safe_load((explorer_dir / CONFIG).read_text()) or {}
        if saved.get("kind") != ("dsrl" if diffusion is not None else "actor"):
            raise ValueError(
                f"{explorer_dir}: holds a {saved.get('kind')!r} explorer, not one for --algo {args.algo}"
            )
    push, served = _server_pusher(args, explorer_dir)

    link = LearnerLink(
        args.bind,
        {k: (shape, dt) for k, (shape, dt) in episode_spec(policy).items()},
        server_key=args.key,
        actors=args.actors,
        insecure_loopback=args.insecure_loopback,
    )
    log_path = Path(args.log_store) if args.log_store else out / "episodes.zarr"
    log_store = EpisodeStore.open(log_path, mode="a") if log_path.exists() else EpisodeStore.create(log_path)
    actors = RobotActors(
        link,
        policy.obs_keys,
        args.discount,
        push,
        log_store=log_store,
        served_version=served,
        learn_from_interventions=args.algo != "dsrl",
        task=args.task,
        reward_offset=args.reward_offset,
        n_step=args.n_step,
    )
    print(
        f"learner listening for robots on {link.endpoint}; explorer {args.policy!r} served at v{served}",
        flush=True,
    )
    config = OnlineConfig(
        env_steps=args.env_steps,
        utd=args.utd,
        batch_size=args.batch_size,
        learning_starts=args.learning_starts,
        offline_fraction=0.5 if offline is not None else 0.0,
        intervention_fraction=0.25 if args.algo != "dsrl" else 0.0,
        discount=args.discount,
        n_step=args.n_step,
        weights_every=args.weights_every,
        eval_every=args.curve_every,  # no evaluator: a curve point = success of the last 20 episodes
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        progress=not args.no_progress,
    )
    run_config = {
        k: v
        for k, v in vars(args).items()
        if k not in ("out", "no_progress", "env_steps", "_run", "server_wait_s", "threads", "curve_every")
    }
    try:
        curve = run_online(algo, None, out, config, offline=offline, run_config=run_config, actor=actors)
    finally:
        actors.close()
    last = curve[-1] if curve else {}
    print(
        f"final: robot steps {last.get('env_step', 0):.0f}, recent success {last.get('train_success', 0):.2f}; "
        f"server at v{actors.served_version}; {actors.episodes} episodes logged to {log_path}; "
        f"{actors.dropped_interventions} intervention steps not learned from"
    )
    print(f"curve: {out}/curve.png")
    return 0


def _server_pusher(args, explorer_dir: Path):
    """Wait until the server serves the explorer; returns (push(weights, version) -> version, served version)."""
    from robot_rl.serving.client import InferenceClient, ZmqTransport
    from robot_rl.serving.curve import load_keypair

    key = load_keypair(args.key) if args.key else None
    server_public = load_keypair(args.server_public, need_secret=False).public if args.server_public else None
    client = InferenceClient(
        ZmqTransport(args.server, client_key=key, server_public=server_public), timeout_s=5.0
    )
    deadline = time.monotonic() + args.server_wait_s
    said = 0.0
    while True:
        try:
            policies = client.status()["policies"]
            if args.policy in policies:
                served = int(policies[args.policy]["version"])
                if int(policies[args.policy].get("latent_dim", 0)) == 0 and args.algo == "dsrl":
                    raise ValueError(
                        f"server policy {args.policy!r} is not a DSRL explorer (serve {explorer_dir})"
                    )
                break
            problem = f"serves {sorted(policies)}, not {args.policy!r}"
        except ValueError:
            raise
        except Exception as exc:  # not up yet
            problem = str(exc)
        if time.monotonic() > deadline:
            raise ValueError(f"inference server {args.server}: {problem} after {args.server_wait_s:g} s")
        if time.monotonic() - said > 10.0:
            print(
                f"waiting for the inference server at {args.server} to serve {args.policy}={explorer_dir} ({problem})",
                flush=True,
            )
            said = time.monotonic()
        time.sleep(0.5)

    def push(weights, version: int) -> int:
        return client.push_weights(args.policy, version, {f"learner.{k}": v for k, v in weights.items()})

    return push, served
