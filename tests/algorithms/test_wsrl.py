"""WSRL: the online learner starts from the offline learner's actor and critics."""

import pytest
import torch

from robot_rl.algorithms.calql import CalQL, CalQLConfig
from robot_rl.algorithms.common import OBS
from robot_rl.algorithms.sac import SACConfig
from robot_rl.algorithms.wsrl import WSRLConfig, warm_start


def test_warm_start_copies_actor_critics_and_temperature(make_policy, make_batch):
    offline = CalQL(make_policy(), CalQLConfig(hidden=(16,), n_actions=2))
    batch = make_batch()
    for _ in range(3):
        offline.update(batch)
    sac = SACConfig(hidden=(16,), critic_members=2, target_members=2, layer_norm=False)
    online = warm_start(
        offline.state_dict(), make_policy(hidden=(32, 32)), WSRLConfig(sac=sac, warmup_steps=10)
    )
    torch.testing.assert_close(online.actor.mode(batch[OBS]), offline.actor.mode(batch[OBS]))
    torch.testing.assert_close(
        online.critic(batch[OBS], batch["action"]), offline.critic(batch[OBS], batch["action"])
    )
    assert online.alpha == offline.alpha
    online.update(batch)  # and trains on


def test_mismatched_networks_are_refused(make_policy, make_batch):
    offline = CalQL(make_policy(), CalQLConfig(hidden=(16,), n_actions=2))
    sac = SACConfig(hidden=(64,), critic_members=2, target_members=2, layer_norm=False)
    with pytest.raises(ValueError, match="calql-run: pre-trained networks do not fit"):
        warm_start(offline.state_dict(), make_policy(), WSRLConfig(sac=sac), source="calql-run")
    with pytest.raises(ValueError, match="no critic weights"):
        warm_start({}, make_policy(), WSRLConfig(sac=sac))
