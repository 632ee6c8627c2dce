"""A learned success reward: a small image classifier trained on labelled frames from the store.

On a real robot there is no simulator to say "success". HIL-SERL's answer: label success
frames once, train a classifier, and use its verdict as the sparse reward (and the end of the
episode). Labels come from the episode store: the last `positive_window` frames of every episode
that ended in a true terminal state (the task's success) are positives, every other frame of
every episode is a negative.

    episode (terminal):   f0 f1 ... f(L-w-1) | f(L-w) ... f(L-1)
                          negatives           | positives (w = positive_window)
    episode (truncated):  all negatives

`ClassifierReward` wraps an env: reward = 1.0 when P(success | camera frame) > threshold, else
0.0, and such a step ends the episode, as the sim's own sparse reward does.

On the robot the inference server serves the classifier beside the policy (`robot-rl serve
--policy push=... --policy reward=runs/reward_clf`): it has the policy interface the server
needs, with one frame in and one "action" out, the success probability:

    obs {image_<camera>: (B, 1, S, S, 3) uint8}  ──►  predict_action  ──►  (B, 1, 1) P(success)

and the policy node in actor mode (reward "classifier") asks it about every new observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robot_rl import keys

KIND = "reward_classifier"
SUCCESS_INFO = "is_success"


@dataclass(frozen=True)
class RewardClassifierConfig:
    camera: str = "front"
    image_size: int = 96
    channels: tuple[int, ...] = (16, 32, 64)
    threshold: float = 0.5
    positive_window: int = 3

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0 or self.positive_window < 1 or self.image_size < 8:
            raise ValueError("threshold in (0, 1), positive_window >= 1 and image_size >= 8 are required")


class RewardClassifier(nn.Module):
    """uint8 (B, H, W, 3) frames of one camera -> success logits (B,)."""

    def __init__(self, config: RewardClassifierConfig = RewardClassifierConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = 3
        for c in config.channels:
            layers += [nn.Conv2d(width, c, 3, stride=2, padding=1), nn.GroupNorm(min(8, c), c), nn.ReLU()]
            width = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, 1)

    @property
    def camera(self) -> str:
        return self.config.camera

    @property
    def key(self) -> str:
        return keys.image_key(self.config.camera)

    # -- the policy interface the inference server needs (robot_rl/serving/worker.py) ---------------
    obs_horizon = 1
    action_horizon = 1
    action_dim = 1

    @property
    def obs_spec(self) -> dict[str, tuple[tuple[int, ...], str]]:
        size = self.config.image_size
        return {self.key: ((size, size, 3), "uint8")}

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """obs[image key] (B, 1, S, S, 3) uint8 -> P(success) as a (B, 1, 1) chunk."""
        return torch.sigmoid(self(obs[self.key][:, -1]))[:, None, None]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.head(self.features(x)).squeeze(-1)

    @torch.no_grad()
    def success_probability(self, frame: np.ndarray) -> float:
        return torch.sigmoid(self(torch.as_tensor(np.asarray(frame))[None])).item()

    def save(self, path: str | Path) -> Path:
        from robot_rl.config.loader import to_dict
        from robot_rl.training.checkpoint import save_checkpoint

        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        return save_checkpoint(path, tensors, {"classifier": to_dict(self.config)}, kind=KIND)

    @classmethod
    def load(cls, path: str | Path) -> RewardClassifier:
        from robot_rl.training.checkpoint import load_checkpoint

        tensors, meta = load_checkpoint(path, kind=KIND)
        return cls.from_checkpoint(tensors, meta, source=str(Path(path) / "config.yaml"))

    @classmethod
    def from_checkpoint(cls, tensors: dict[str, torch.Tensor], meta: dict, source: str) -> RewardClassifier:
        from robot_rl.config.loader import from_dict

        model = cls(
            from_dict(RewardClassifierConfig, meta.get("classifier"), source=source, prefix="classifier")
        )
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            raise ValueError(f"{source}: weights do not fit the config ({exc})") from exc
        return model.eval()


def labelled_frames(store, config: RewardClassifierConfig) -> tuple[np.ndarray, np.ndarray]:
    """(frames (N, H, W, 3) uint8, labels (N,) float32) from every episode of the store."""
    key = keys.image_key(config.camera)
    if key not in store.spec:
        raise ValueError(f"{store.path}: no camera key {key!r} (keys: {', '.join(store.keys)})")
    frames, labels = [], []
    for i in range(len(store)):
        ep = store.episode(i, (key, keys.TERMINAL))
        label = np.zeros(len(ep[key]), np.float32)
        if bool(ep[keys.TERMINAL][-1]):
            label[-config.positive_window :] = 1.0
        frames.append(ep[key])
        labels.append(label)
    return np.concatenate(frames), np.concatenate(labels)


def train_reward_classifier(
    store,
    config: RewardClassifierConfig,
    steps: int = 2000,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[RewardClassifier, dict[str, float]]:
    """Class-balanced minibatches (half positives); returns the model and its training accuracy."""
    from tqdm import tqdm

    frames, labels = labelled_frames(store, config)
    pos, neg = np.flatnonzero(labels > 0.5), np.flatnonzero(labels < 0.5)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"{store.path}: need both success and failure frames (have {len(pos)} / {len(neg)})")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RewardClassifier(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    data = torch.as_tensor(frames)
    target = torch.as_tensor(labels)
    for _ in tqdm(range(steps), desc="reward classifier", disable=not progress):
        idx = np.concatenate(
            [rng.choice(pos, batch_size // 2), rng.choice(neg, batch_size - batch_size // 2)]
        )
        loss = loss_fn(model(data[idx]), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(data[i : i + 256]) for i in range(0, len(data), 256)]) > 0
    truth = target > 0.5
    return model, {
        "accuracy_success": pred[truth].float().mean().item(),
        "accuracy_failure": (~pred[~truth]).float().mean().item(),
        "frames": float(len(data)),
    }


class ClassifierReward(gym.Wrapper):
    """Replace the env's reward by the classifier's success verdict on the camera frame."""

    def __init__(self, env: gym.Env, classifier: RewardClassifier):
        super().__init__(env)
        self.classifier = classifier.eval()

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        if self.classifier.key not in obs:
            raise KeyError(f"the env gives no {self.classifier.key!r} frame for the reward classifier")
        p = self.classifier.success_probability(obs[self.classifier.key])
        success = p > self.classifier.config.threshold
        info = {
            **info,
            "env_success": info.get(SUCCESS_INFO, False),
            SUCCESS_INFO: success,
            "success_prob": p,
        }
        return obs, float(success), terminated or success, truncated, info
