"""`serve --int8`: diffusion policies are served as int8 copies on CPU; weight pushes to them are
refused by name and the server goes on answering; a policy with no int8 form is refused at start."""

import argparse

import numpy as np
import pytest
from serving_helpers import (
    ACTION_HORIZON,
    insecure_config,
    secure_client,
    secure_config,
    tiny_policy,
    valid_obs,
)

from robot_rl.policies.explorer import Explorer
from robot_rl.serving import cli
from robot_rl.serving.client import ServerError
from robot_rl.serving.config import ServerConfig
from robot_rl.serving.server import InferenceServer


def test_int8_server_serves_a_quantized_copy_and_refuses_weight_pushes(key_set):
    policy = tiny_policy(seed=3, steps=4)
    with InferenceServer({"pick": policy}, secure_config(key_set, int8=True)) as srv:
        served = srv.workers["pick"].policy
        assert served.int8 and not policy.int8, "the server must quantize a copy, not the caller's policy"
        with secure_client(key_set, srv.endpoint, "learner") as c:
            first = c.infer("pick", valid_obs(0.3), stamp=1.0).actions
            with pytest.raises(ServerError) as err:
                c.push_weights("pick", 5, policy.state_dict())
            assert err.value.code == "bad_update" and "int8" in str(err.value)
            assert c.status()["policies"]["pick"]["version"] == 0
            again = c.infer("pick", valid_obs(0.3), stamp=2.0).actions
    for chunk in (first, again):
        assert chunk.shape == (ACTION_HORIZON, 7) and np.isfinite(chunk).all() and np.abs(chunk).max() <= 1.0


def test_int8_is_refused_off_cpu_and_for_policies_without_an_int8_form():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    base = ["--policy", "pick=/nowhere", "--insecure-loopback"]
    assert cli.build_config(parser.parse_args([*base, "--int8"])).int8
    assert not cli.build_config(parser.parse_args(base)).int8
    with pytest.raises(ValueError, match="int8 serves on CPU"):
        cli.build_config(parser.parse_args([*base, "--int8", "--device", "cuda:0"]))
    with pytest.raises(ValueError, match="int8 serves on CPU"):
        ServerConfig(bind="tcp://127.0.0.1:*", device="cuda", int8=True)
    with pytest.raises(ValueError, match="not a diffusion policy"):
        InferenceServer({"rl": Explorer.__new__(Explorer)}, insecure_config(int8=True))
