"""Cal-QL: the CQL penalty, calibrated by the Monte-Carlo lower bound."""

import torch

from robot_rl.algorithms.calql import CalQL, CalQLConfig
from robot_rl.algorithms.common import MC_RETURN


def test_losses_fall_and_state_round_trips(make_policy, make_batch):
    cfg = CalQLConfig(hidden=(32, 32), critic_lr=3e-3, n_actions=4)
    algo = CalQL(make_policy(), cfg)
    batch = make_batch(terminal=1.0)
    first = algo.update(batch)
    for _ in range(150):
        last = algo.update(batch)
    assert last["critic_loss"] < first["critic_loss"]
    assert last["cql_gap"] < first["cql_gap"]
    clone = CalQL(make_policy(), cfg)
    clone.load_state_dict(algo.state_dict())
    torch.manual_seed(3)
    a = algo.update(batch)
    torch.manual_seed(3)
    assert clone.update(batch) == a


def test_monte_carlo_lower_bound_enters_the_penalty(make_policy, make_batch):
    policy = make_policy()
    calibrated = CalQL(policy, CalQLConfig(hidden=(16,), n_actions=4))
    plain = CalQL(policy, CalQLConfig(hidden=(16,), n_actions=4, calibrated=False))
    plain.critic.load_state_dict(calibrated.critic.state_dict())
    batch = make_batch()
    batch[MC_RETURN] = torch.full_like(batch[MC_RETURN], 50.0)
    torch.manual_seed(0)
    _, high = calibrated.critic_losses(batch)
    torch.manual_seed(0)
    _, unbounded = plain.critic_losses(batch)
    # Policy values are floored at MC = 50, so the logsumexp is at least about 50 + entropy terms.
    assert high["cql_gap"] > 45.0
    assert unbounded["cql_gap"] < 20.0
    # A very low MC return leaves the floor inactive: calibrated == plain.
    batch[MC_RETURN] = torch.full_like(batch[MC_RETURN], -1e6)
    torch.manual_seed(0)
    _, low = calibrated.critic_losses(batch)
    torch.testing.assert_close(low["cql_gap"], unbounded["cql_gap"])
