"""Simulated UR5e arm, manipulation tasks and scripted experts (MuJoCo + gymnasium).

    import sim
    env = sim.make_env("push", cameras=("front", "wrist"))   # a gymnasium.Env
    sim.register_envs()                                        # robot_rl/Push-v0, ... for gymnasium.make
    expert = sim.experts.make_expert("push", quality="expert", seed=0)

Importing this package is cheap (no mujoco import); models are built on first use.
"""
