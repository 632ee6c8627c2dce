"""`robot-rl train diffusion` end to end on a small store: --obs-keys KEY[a:b] reaches the policy."""

import pytest

from robot_rl.cli import main

SMALL = ["--down-dims", "16,32", "--pred-horizon", "8", "--action-horizon", "4", "--steps", "3"]
SMALL += ["--batch-size", "8", "--threads", "1", "--val-every", "0", "--checkpoint-every", "3"]


def test_obs_key_slice_is_saved_with_the_policy(tiny_store, tmp_path):
    import torch

    from robot_rl import keys
    from robot_rl.policies import load_policy

    out = tmp_path / "run"
    argv = [
        "train",
        "diffusion",
        "--data",
        str(tiny_store),
        "--out",
        str(out),
        "--obs-keys",
        "joint_pos,goal_pos[:2]",
    ]
    assert main([*argv, *SMALL]) == 0
    policy = load_policy(out / "policy")
    assert policy.config.obs_spec[keys.GOAL_POS].dims == (0, 1)
    assert policy.config.obs_spec[keys.JOINT_POS].dims == ()
    obs = {keys.JOINT_POS: torch.zeros(1, 2, 6), keys.GOAL_POS: torch.zeros(1, 2, 3)}
    assert policy.predict_action(obs).shape == (1, 4, 7)


@pytest.mark.parametrize(
    "entry, says", [("goal_pos[x]", "is not KEY or KEY[a:b]"), ("goal_pos[5:]", "selects nothing")]
)
def test_bad_obs_key_slice_is_refused_by_name(entry, says, tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "diffusion", "--data", str(tiny_store), "--out", str(out), "--obs-keys", entry]
    assert main([*argv, *SMALL]) == 2
    err = capsys.readouterr().err
    assert "--obs-keys" in err and entry.split("[")[0] in err and says in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "rlpd", "--out", "run"],
        ["train", "dsrl", "--out", "run", "--diffusion", "bc"],
        ["learn", "--algo", "dsrl", "--out", "run"],
    ],
)
def test_sac_options_reach_sac_and_nan_is_refused(argv, capsys):
    from robot_rl.cli import build_parser
    from robot_rl.training.rl_cli import sac_config

    parser = build_parser()
    asked = [*argv, "--target-entropy", "0", "--init-temperature", "0.01", "--no-entropy-backup"]
    config = sac_config(parser.parse_args([*asked, "--actor-every", "1"]), (8,))
    assert (config.target_entropy, config.init_temperature, config.backup_entropy) == (0.0, 0.01, False)
    assert config.actor_every == 1
    default = sac_config(parser.parse_args(argv), (8,))
    assert (default.target_entropy, default.init_temperature, default.backup_entropy) == (None, 1.0, True)
    assert default.actor_every == 0  # once per env step
    assert (
        sac_config(parser.parse_args([*argv, "--actor-every", "0"]), (8,)).actor_every == 0
    )  # the default, said
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--target-entropy", "nan"])
    assert "--target-entropy" in capsys.readouterr().err


def test_reward_offset_shifts_online_and_offline_rewards_alike(tiny_store):
    import numpy as np

    from robot_rl import keys
    from robot_rl.cli import build_parser
    from robot_rl.training.rl_cli import _make_env, _online_config, offline_buffer

    parser = build_parser()
    base = ["train", "rlpd", "--out", "run", "--data", str(tiny_store), "--obs-keys", "joint_pos,goal_pos"]
    plain, shifted = parser.parse_args(base), parser.parse_args([*base, "--reward-offset", "1"])
    rewards = [
        buffer.take(np.arange(len(buffer)))[keys.REWARD]
        for buffer, _ in (offline_buffer(a, ["joint_pos", "goal_pos"]) for a in (plain, shifted))
    ]
    np.testing.assert_allclose(rewards[1], rewards[0] - 1.0)

    env = _make_env(shifted)
    obs, _ = env.reset(seed=0)
    hold = np.append(obs[keys.JOINT_POS], 1.0).astype(np.float32)  # stay put: no success
    assert env.step(hold)[1] == -1.0
    assert _online_config(parser.parse_args([*base, "--learning-starts", "300"])).learning_starts == 300


@pytest.mark.parametrize(
    "learner, obs_keys, says",
    [
        (["rlpd", "--data", "STORE"], "joint_pos,goal_poss", "goal_poss not in the store"),
        (["rlpd", "--data", "STORE"], "joint_pos,object_pose[:3]", "take whole keys"),
        (["rlpd"], "joint_pos,goal_poss", "goal_poss not observed by the env"),
        (["iql", "--data", "STORE", "--steps", "1"], "joint_pos,ee_poss", "ee_poss not in the store"),
        # Named explicitly, even the default keys must all be there (only the defaults left
        # unsaid mean "those the data has").
        (
            ["iql", "--data", "STORE", "--steps", "1"],
            "joint_pos,gripper_pos,ee_pos,object_pose,goal_pos",
            "gripper_pos, ee_pos, object_pose not in the store",
        ),
    ],
)
def test_rl_obs_keys_the_data_or_env_lacks_are_refused_by_name(
    learner, obs_keys, says, tiny_store, tmp_path, capsys
):
    out = tmp_path / "run"
    learner = [str(tiny_store) if a == "STORE" else a for a in learner]
    argv = ["train", *learner, "--out", str(out), "--obs-keys", obs_keys, "--env-steps", "1"]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--obs-keys" in err and says in err
    assert not (out / "checkpoints").exists()


def test_rl_default_obs_keys_are_those_the_data_or_env_has(tiny_store):
    import sim
    from robot_rl.cli import build_parser
    from robot_rl.training.rl_cli import _policy_from_env, offline_buffer, select_obs_keys

    args = build_parser().parse_args(["train", "iql", "--data", str(tiny_store), "--out", "run"])
    assert offline_buffer(args, None)[1] == ["joint_pos", "goal_pos"]
    # RLPD without data on reach, whose env has no object: the other four defaults.
    policy = _policy_from_env(sim.make_env("reach"), None, (16,))
    assert policy.obs_keys == ["joint_pos", "gripper_pos", "ee_pos", "goal_pos"]
    with pytest.raises(
        ValueError, match=r"^cams.zarr: none of the default --obs-keys .* in the store \(image/front\)"
    ):
        select_obs_keys(None, ["image/front"], "cams.zarr:", "in the store")


def test_relative_to_bounds_the_actor_by_per_step_changes_and_is_refused_unobserved(
    tiny_store, tmp_path, capsys
):
    import numpy as np

    import sim
    from robot_rl import keys
    from robot_rl.cli import build_parser
    from robot_rl.data.store import EpisodeStore
    from robot_rl.training.rl_cli import _policy_from_env, offline_buffer, policy_from_data

    argv = ["train", "rlpd", "--out", "run", "--data", str(tiny_store), "--relative-to", "joint_pos"]
    args = build_parser().parse_args(argv)
    buffer, obs_keys = offline_buffer(args, None)
    policy = policy_from_data(buffer, obs_keys, (16,), relative_to=args.relative_to)
    store = EpisodeStore.open(tiny_store, mode="r")
    change = store.array(keys.ACTION)[:, :6] - store.array(keys.JOINT_POS)[:]
    margin = np.maximum(0.1 * (change.max(0) - change.min(0)), 0.05)
    np.testing.assert_allclose(policy.act_low[:6].numpy(), change.min(0) - margin, rtol=1e-5)
    np.testing.assert_allclose(policy.act_high[:6].numpy(), change.max(0) + margin, rtol=1e-5)
    # Without data: what the joint can move in one policy step, either way.
    env = sim.make_env("reach")
    policy = _policy_from_env(env, None, (16,), relative_to="joint_pos")
    step = env.unwrapped.max_action_step
    np.testing.assert_allclose(policy.act_high[:6].numpy(), step[:6], rtol=1e-6)
    np.testing.assert_allclose(policy.act_low[:6].numpy(), -step[:6], rtol=1e-6)
    assert policy.act_high[6] == env.action_space.high[6]
    # The actor must see what its actions are relative to.
    out = tmp_path / "run"
    argv = ["train", "rlpd", "--data", str(tiny_store), "--out", str(out), "--relative-to", "ee_pos"]
    assert main([*argv, "--obs-keys", "joint_pos,goal_pos", "--env-steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--relative-to ee_pos: not one of the observation keys joint_pos,goal_pos" in err
    assert not (out / "checkpoints").exists()
    argv = ["learn", "--algo", "dsrl", "--diffusion", "bc", "--out", str(out), "--relative-to", "joint_pos"]
    assert main([*argv, "--insecure-loopback"]) == 2
    assert "--relative-to is for --algo rlpd" in capsys.readouterr().err


def test_learn_refuses_an_obs_key_its_offline_data_lacks_before_waiting_for_a_server(
    tiny_store, tmp_path, capsys
):
    out = tmp_path / "run"
    argv = ["learn", "--algo", "rlpd", "--data", str(tiny_store), "--out", str(out)]
    argv += ["--obs-keys", "joint_pos,goal_poss", "--insecure-loopback", "--server-wait-s", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--obs-keys" in err and "goal_poss not in the store" in err
    assert not (out / "explorer").exists()


def test_n_step_reaches_the_offline_data_and_the_online_loop(tiny_store):
    from robot_rl.cli import build_parser
    from robot_rl.training.rl_cli import _online_config, offline_buffer

    argv = ["train", "rlpd", "--out", "run", "--data", str(tiny_store), "--n-step", "3"]
    args = build_parser().parse_args(argv)
    buffer, obs_keys = offline_buffer(args, None, args.n_step)
    assert {f"next_obs_n/{k}" for k in obs_keys} <= set(buffer.spec)
    assert _online_config(args).n_step == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv[:-1], "0"])


def test_rlpd_critic_probe_reads_a_run_and_refuses_other_learners(tiny_store, tmp_path, capsys):
    from bench.rlpd_critic_probe import main as probe

    out = tmp_path / "rlpd"
    argv = ["train", "rlpd", "--task", "push", "--data", str(tiny_store), "--out", str(out)]
    argv += ["--env-steps", "12", "--eval-every", "0", "--critics", "2", "--utd", "1", "--hidden", "16"]
    assert main([*argv, "--batch-size", "8", "--max-episode-steps", "6", "--no-progress"]) == 0
    capsys.readouterr()
    assert probe(["--run", str(out), "--data", str(tiny_store), "--episodes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "at env step 12" in lines[0] and len(lines) == 3
    # tiny_store never terminates: to the sparse reward every episode is a failure, return 0
    assert lines[1].startswith("episode 0 (failure, 30 steps)") and lines[1].endswith("/ 0.000")
    (out / "run.yaml").write_text((out / "run.yaml").read_text().replace("learner: rlpd", "learner: dsrl"))
    with pytest.raises(SystemExit):
        probe(["--run", str(out), "--data", str(tiny_store)])
