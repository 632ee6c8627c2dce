"""SAC / RLPD recipe: critic regression works, targets trail, the target uses a random pair."""

import pytest
import torch

from robot_rl.algorithms.common import REWARD
from robot_rl.algorithms.sac import SAC, SACConfig


def test_critic_loss_falls_to_terminal_rewards(make_policy, make_batch):
    algo = SAC(make_policy(), SACConfig(hidden=(32, 32), critic_members=4, critic_lr=3e-3))
    batch = make_batch(terminal=1.0)
    first = algo.update(batch)["critic_loss"]
    for _ in range(300):
        last = algo.update(batch)["critic_loss"]
    assert last < 0.2 * first
    q = algo.critic(batch["obs"], batch["action"]).mean(0)
    assert torch.corrcoef(torch.stack([q, batch[REWARD]]))[0, 1] > 0.9


def test_target_network_trails_by_tau(make_policy, make_batch):
    algo = SAC(make_policy(), SACConfig(hidden=(16,), critic_members=2, tau=0.1))
    before = [p.clone() for p in algo.critic_target.parameters()]
    algo.update(make_batch())
    for b, t, c in zip(before, algo.critic_target.parameters(), algo.critic.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * c)


def test_td_target_is_min_over_a_random_pair(make_policy, make_batch):
    members = 5
    algo = SAC(make_policy(), SACConfig(hidden=(8,), critic_members=members, backup_entropy=False, gamma=1.0))
    # Target member m outputs the constant m + 1, whatever the input.
    with torch.no_grad():
        for p in algo.critic_target.parameters():
            p.zero_()
        algo.critic_target.net.net[-1].bias.copy_(torch.arange(1.0, members + 1).view(members, 1, 1))
    batch = make_batch(size=4, reward=0.0)
    seen = {round(algo.td_target(batch)[0].item()) for _ in range(300)}
    # The min of a random pair of {1..5} is any of 1..4, never 5; the ensemble min would always be 1.
    assert seen == {1, 2, 3, 4}


def test_state_dict_resumes_exactly(make_policy, make_batch):
    cfg = SACConfig(hidden=(16,), critic_members=3)
    algo = SAC(make_policy(), cfg)
    for seed in range(3):
        algo.update(make_batch(seed=seed))
    clone = SAC(make_policy(), cfg)
    clone.load_state_dict(algo.state_dict())
    torch.manual_seed(7)
    a = algo.update(make_batch(seed=9))
    torch.manual_seed(7)
    b = clone.update(make_batch(seed=9))
    assert a == b and clone.steps == algo.steps == 4


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="target_members"):
        SACConfig(critic_members=2, target_members=3)


def test_actor_step_leaves_the_critic_alone_and_moves_actor_and_temperature(make_policy, make_batch):
    algo = SAC(make_policy(), SACConfig(hidden=(16,), critic_members=2))
    critic = [p.clone() for p in algo.critic.parameters()]
    actor = [p.clone() for p in algo.actor.parameters()]
    log_alpha = algo.log_alpha.detach().clone()
    info = algo.update_actor(make_batch()["obs"])
    assert set(info) == {"actor_loss", "alpha", "entropy"} and all(
        isinstance(v, float) for v in info.values()
    )
    for before, after in zip(critic, algo.critic.parameters()):
        assert torch.equal(before, after) and after.requires_grad and after.grad is None
    assert all(not torch.equal(b, a) for b, a in zip(actor, algo.actor.parameters()))
    assert algo.log_alpha.item() != log_alpha.item()


def test_one_backward_for_actor_and_alpha_equals_two(make_policy, make_batch):
    """update_actor sums the two losses into one backward; the gradients must be those of two."""
    algo = SAC(make_policy(), SACConfig(hidden=(16,), critic_members=2))
    obs = make_batch()["obs"]

    def losses(seed):
        torch.manual_seed(seed)
        action, log_prob = algo.actor.sample(obs)
        q = algo.critic(obs, action).mean(0)
        actor_loss = (algo.alpha * log_prob - q).mean()
        alpha_loss = (algo.log_alpha.exp() * (-log_prob.detach() - algo.target_entropy)).mean()
        return actor_loss, alpha_loss

    params = [*algo.actor.parameters(), algo.log_alpha]
    actor_loss, alpha_loss = losses(0)
    separate = [
        g if g is not None else torch.zeros_like(p)
        for g, p in zip(torch.autograd.grad(actor_loss, params, allow_unused=True), params)
    ]
    separate[-1] = torch.autograd.grad(alpha_loss, algo.log_alpha)[0]
    actor_loss, alpha_loss = losses(0)
    joint = torch.autograd.grad(actor_loss + alpha_loss, params)
    for a, b in zip(separate, joint):
        torch.testing.assert_close(a, b)
