"""What the ROS path's execution does to a policy's success, in sim time, without ROS.

    .venv/bin/python bench/ros_semantics.py --policy CKPT [--seeds 1-150] [--latency 0.09]
                                            [--start-delay 0] [--action-horizon 0] [--missed-ticks 0]

The paired ROS test (tests/e2e/test_policy_graph.py) compares plain-sim evaluation with the
whole graph in real time. Between the two lie (1) the execution semantics: chunks built as
policy_node builds them (point 0 = the last command at the observation's stamp), executed by
the controller's ChunkExecutor (spline, cross-fade) through the SafetyFilter at 500 Hz into a
sim stepping at the sim node's 100 Hz, the chunk arriving `--latency` seconds after its
observation and the policy starting `--start-delay` sim steps into the episode; and (2)
real-time effects: a busy CPU, timer jitter, late or lost messages. This script runs (1)
alone, synchronously on a simulated clock (ControlLoop.tick with the sim time), on the same
scene seeds, and prints plain-sim success beside it (robot_rl.training.evaluation, same
seeds): what (1) costs. What the ROS test loses beyond that is (2).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ros_semantics_success(
    policy, seed: int, latency_s: float, start_delay: int, steps: int, missed: float = 0.0
) -> bool:
    import torch

    import sim
    from robot_rl import keys
    from robot_rl.config.hardware import load_hardware_config
    from robot_rl.control.executor import Chunk
    from robot_rl.control.kinematics import ArmKinematics
    from robot_rl.control.loop import ControlLoop, JointState

    hw = load_hardware_config("sim_ur5e")
    # The ROS test's watchdog: a chunk every `steps` policy steps plus the inference deadline.
    hw = dataclasses.replace(hw, safety=dataclasses.replace(hw.safety, chunk_timeout_s=steps * 0.1 + 0.5))
    kin = ArmKinematics(hw)
    env = sim.make_env(
        "push", hardware=hw.source, policy_rate_hz=100.0, max_episode_steps=10**9, terminate_on_success=False
    )
    obs, _ = env.reset(seed=seed)
    policy.reset()
    clock = {"now": 0.0}
    measured = {
        "state": JointState(np.append(obs[keys.JOINT_POS], obs[keys.GRIPPER_POS]).astype(np.float64), 0.0)
    }
    sent = {"command": measured["state"].position.copy()}
    loop = ControlLoop(
        hw,
        lambda: measured["state"],
        lambda c: sent.__setitem__("command", np.array(c)),
        clock=lambda: clock["now"],
    )
    rng = np.random.default_rng(seed)
    history: deque = deque(maxlen=policy.obs_horizon)
    in_flight: list[tuple[float, Chunk]] = []  # (arrival, chunk)
    last_command, due = None, 0
    for k in range(1200):  # 12 s at the sim node's 100 Hz, the ROS test's episode
        t = k * 0.01
        if k >= start_delay and (k - start_delay) % 10 == 0:  # policy_node's 10 Hz tick
            values = {key: np.asarray(obs[key], np.float32) for key in policy.obs_spec if key != keys.EE_POS}
            values[keys.EE_POS] = kin.fk(obs[keys.JOINT_POS])[0].astype(np.float32)  # as policy_node
            while len(history) < history.maxlen - 1:
                history.append(values)
            history.append(values)
            due -= 1
            if due <= 0:
                window = {
                    key: torch.as_tensor(np.stack([v[key] for v in history]))[None] for key in policy.obs_spec
                }
                with torch.no_grad():
                    actions = policy.predict_action(window)[0].numpy().astype(np.float64)
                start = last_command
                if start is None:
                    start = np.append(obs[keys.JOINT_POS], obs[keys.GRIPPER_POS]).astype(np.float64)
                in_flight.append((t + latency_s, Chunk(t, 0.1, np.vstack([start, actions]))))
                last_command, due = actions[steps - 1], steps
        for j in range(5):  # the controller's 500 Hz ticks within this sim step
            clock["now"] = t + j * 0.002
            while in_flight and in_flight[0][0] <= clock["now"] + 1e-12:
                loop.submit(in_flight.pop(0)[1])
            if missed and rng.random() < missed:
                continue  # a missed deadline: the loop skips the slot (robot_rl/control/loop.py)
            loop.tick(clock["now"])
        obs, _, _, _, info = env.step(sent["command"].astype(np.float32))
        measured["state"] = JointState(
            np.append(obs[keys.JOINT_POS], obs[keys.GRIPPER_POS]).astype(np.float64), t + 0.01
        )
        if info.get("is_success"):
            return True
    return False


def main() -> int:
    from robot_rl.cli_types import float_in

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="a push policy checkpoint (state observations)")
    parser.add_argument("--seeds", default="1-150", help="scene seeds FIRST-LAST (the ROS test uses 1..N)")
    parser.add_argument(
        "--latency", type=float, default=0.09, help="seconds from observation to chunk arrival"
    )
    parser.add_argument("--start-delay", type=int, default=0, help="sim steps (10 ms) before the first tick")
    parser.add_argument(
        "--action-horizon", type=int, default=0, help="steps run from each chunk, both paths (0: as saved)"
    )
    parser.add_argument(
        "--missed-ticks",
        type=float_in(0.0, 1.0, open_high=True),
        default=0.0,
        help="fraction of control slots the loop misses (at random)",
    )
    args = parser.parse_args()
    import torch
    from tqdm import tqdm

    from robot_rl.policies import load_policy
    from robot_rl.training.evaluation import EvalConfig, evaluate

    torch.set_num_threads(1)
    first, last = (int(x) for x in args.seeds.split("-"))
    seeds = range(first, last + 1)
    policy = load_policy(args.policy)
    # As ROBOT_RL_E2E_ACTION_HORIZON in the ROS test: policy_node sends the whole served chunk
    # (the policy's own Ta) and asks for the next after `steps`; plain sim runs Ta = steps.
    steps = args.action_horizon or policy.action_horizon
    if steps > policy.action_horizon:
        parser.error(f"--action-horizon {steps} exceeds the policy's Ta {policy.action_horizon}")
    ours = [
        ros_semantics_success(policy, s, args.latency, args.start_delay, steps, args.missed_ticks)
        for s in tqdm(seeds, desc="ROS semantics", unit="episode")
    ]
    policy.config = dataclasses.replace(policy.config, action_horizon=steps)
    plain = evaluate(
        policy, EvalConfig(task="push", episodes=len(seeds), seed=first), progress=False
    ).successes
    outcomes = lambda xs: "".join("1" if x else "0" for x in xs)  # noqa: E731
    print(f"\nper seed {first}..{last}, plain sim:     {outcomes(plain)}")
    print(f"per seed {first}..{last}, ROS semantics: {outcomes(ours)}")
    print(
        f"push success: plain sim {np.mean(plain):.2f}, ROS semantics {np.mean(ours):.2f} (latency "
        f"{args.latency * 1e3:.0f} ms, start delay {args.start_delay * 10} ms, Ta {steps}, missed slots {args.missed_ticks:.0%}); ratio "
        f"{np.mean(ours) / max(np.mean(plain), 1e-9):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
