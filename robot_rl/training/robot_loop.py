"""Online RL on a robot, through the ROS graph: the actor's episodes and the learner's view of them.

    policy_node (actor mode)                       robot-rl learn (learner process)
    ------------------------                       ------------------------------------------
    obs -> inference server (Explorer) -> chunk    LearnerLink: episodes in, checked
    EpisodeBuilder: one step per chunk request:    RobotActors.step():
      obs, action (the reply's latent, or the        append the episode to the log store
      executed action), reward (task success or      (data/<key>, action, reward, terminal,
      operator label), intervention (teleop)         intervention; meta source "policy")
    episode ends -> send_transitions(episode) ---->  episode_transitions -> the learner's replay
    reset (sim reset / operator), next episode     RobotActors.load_weights: hot update of the
                                         <-------  inference server (op "update", versioned)

The robot sends each finished episode in the episode store's layout (per-step observations,
not transition pairs), so the learner can log exactly what the robot did and build the
transitions itself (robot_rl.data.transitions: a truncated episode's last step has no
successor and is left out). New weights never travel to the robot: they go to the inference
server, which swaps them between batches while the robot keeps asking for chunks.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from robot_rl import keys
from robot_rl.data.transitions import episode_transitions
from robot_rl.training.actor_link import LearnerLink, RemoteActors


def episode_spec(policy) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The arrays of one episode as a robot sends it for the learner's `policy` (an ActorPolicy:
    its observation keys, its action): (shape per step, dtype)."""
    spec = {k: ((d,), np.dtype(np.float32)) for k, d in zip(policy.obs_keys, policy.obs_dims)}
    spec[keys.ACTION] = ((policy.act_dim,), np.dtype(np.float32))
    spec[keys.REWARD] = ((), np.dtype(np.float32))
    spec[keys.TERMINAL] = ((), np.dtype(bool))
    spec[keys.INTERVENTION] = ((), np.dtype(bool))
    return spec


class EpisodeBuilder:
    """The actor's record of one episode on the robot: one step per chunk request.

    A step opens with the observation the chunk was asked for and the learner's action for it;
    reward and intervention accumulate on the open step until the next one opens.
    """

    def __init__(self, obs_keys: list[str]):
        self.obs_keys = list(obs_keys)
        self.clear()

    def clear(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.steps)

    def open_step(self, obs: dict[str, np.ndarray], action: np.ndarray) -> None:
        step = {k: np.asarray(obs[k], np.float32) for k in self.obs_keys}
        step.update({keys.ACTION: np.asarray(action, np.float32), keys.REWARD: 0.0, keys.INTERVENTION: False})
        self.steps.append(step)

    def add_reward(self, reward: float) -> None:
        if self.steps:
            self.steps[-1][keys.REWARD] += float(reward)

    def mark_intervention(self, action: np.ndarray | None = None) -> None:
        """The open step was a person's: flagged, and its action is theirs when given."""
        if self.steps:
            self.steps[-1][keys.INTERVENTION] = True
            if action is not None:
                self.steps[-1][keys.ACTION] = np.asarray(action, np.float32)

    def finish(self, terminal: bool, success: bool, env_steps: int) -> tuple[dict[str, np.ndarray], dict]:
        """The episode in the store's layout, and its stats; the builder is empty afterwards."""
        steps = self.steps
        out = {k: np.stack([s[k] for s in steps]) for k in (*self.obs_keys, keys.ACTION)}
        out[keys.REWARD] = np.array([s[keys.REWARD] for s in steps], np.float32)
        out[keys.INTERVENTION] = np.array([s[keys.INTERVENTION] for s in steps], bool)
        out[keys.TERMINAL] = np.zeros(len(steps), bool)
        out[keys.TERMINAL][-1] = terminal
        stats = {
            "return": float(out[keys.REWARD].sum()),
            "success": float(success),
            "length": float(len(steps)),
            "env_steps": float(env_steps),
            "interventions": float(out[keys.INTERVENTION].sum()),
        }
        self.clear()
        return out, stats


class RobotActors(RemoteActors):
    """The learner loop's view of robots: episodes in (logged, turned into transitions), new
    weights out to the inference server as hot updates.

    `push(weights, version)` sends weights to the server (robot_rl.serving.client's
    push_weights, bound to the policy name); versions continue from what the server serves.
    With `learn_from_interventions` False (DSRL: a person's joint-space action is no latent
    noise) intervention steps are logged but do not reach the learner. `reward_offset` is
    subtracted from every step's reward on its way to the learner; the log keeps the robot's.

    A thread of its own answers the robots on the link's socket (the only thread that touches
    it), so an episode is taken the moment it arrives, also while the learner is busy with a
    burst of gradient updates; `step` takes the next received episode, waiting up to poll_ms.
    `close()` stops that thread and closes the link.
    """

    def __init__(
        self,
        link: LearnerLink,
        obs_keys: list[str],
        discount: float,
        push,
        log_store=None,
        served_version: int = 0,
        learn_from_interventions: bool = True,
        task: str = "",
        reward_offset: float = 0.0,
        poll_ms: int = 50,
        n_step: int = 1,
    ):
        super().__init__(link, poll_ms)
        self.n_step = n_step
        self.reward_offset = float(reward_offset)
        self.obs_keys = list(obs_keys)
        self.discount = discount
        self.push = push
        self.log_store = log_store
        self.base_version = served_version
        self.learn_from_interventions = learn_from_interventions
        self.task = task
        self.served_version = served_version
        self.episodes = 0
        self.dropped_interventions = 0
        self._stop = threading.Event()
        self._arrived = threading.Event()
        self._thread = threading.Thread(target=self._answer_robots, name="learner-link", daemon=True)
        self._thread.start()

    def _answer_robots(self) -> None:
        while not self._stop.is_set():
            if self.link.poll(50):
                self._arrived.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.link.close()

    def step(self, explore_uniform: bool = False):  # noqa: ARG002 - robots explore on their side
        if not self.link.received:
            self._arrived.clear()
            self._arrived.wait(self.poll_ms / 1e3)
        if not self.link.received:
            self.last_env_steps = self.last_transitions = 0
            return None, None
        episode, stats = self.link.received.popleft()
        self.episodes += 1
        success = bool(stats.get("success", 0.0))
        if self.log_store is not None:
            from robot_rl.data.store import EpisodeMeta

            self.log_store.append_episode(
                episode, EpisodeMeta(task=self.task, success=success, source="policy")
            )
        if self.reward_offset:
            episode = {**episode, keys.REWARD: episode[keys.REWARD] - np.float32(self.reward_offset)}
        if not self.learn_from_interventions:
            keep = ~episode[keys.INTERVENTION]
            self.dropped_interventions += int((~keep).sum())
            if not keep.all():  # the steps before the first intervention still chain
                first = int(np.argmin(keep))
                episode = {k: v[:first] for k, v in episode.items()}
        transitions = (
            episode_transitions(episode, tuple(self.obs_keys), self.discount, self.n_step)
            if len(episode[keys.ACTION])
            else {}
        )
        n = len(transitions.get(keys.ACTION, ()))
        self.last_transitions = n
        self.last_env_steps = int(stats.get("env_steps", len(episode[keys.ACTION])))
        if n == 0:
            return None, None
        return transitions, {"return": 0.0, "success": 0.0, **stats, "length": float(n)}

    def load_weights(self, tensors: dict[str, torch.Tensor], version: int) -> None:
        self.served_version = self.push(tensors, self.base_version + version)
