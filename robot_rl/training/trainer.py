"""The one offline trainer: every learner (diffusion BC, consistency distillation, IQL, Cal-QL)
trains through this loop.

    trainer = Trainer(algorithm, train_data, out_dir, TrainerConfig(steps=20_000),
                      val_data=val_data, evaluator=evaluator, run_config=plain_dict)
    metrics = trainer.fit()      # resumes from out_dir/checkpoints/latest when it exists

`algorithm` is anything with the algorithm contract: `update(batch) -> dict[str, float]`
(one gradient step; it owns optimizers, EMA and targets), `state_dict() -> dict[str, Tensor]`,
`load_state_dict(tensors)` (everything needed to resume bit-exactly), and `policy` (what is
evaluated and saved; it must have `save(path)`). Optional: `validation_loss(batch) -> dict`.
`train_data` / `val_data` are map-style datasets of dict[str, Tensor] samples (for example
robot_rl.data's SequenceDataset); default collation stacks them into batches.

Each step (one cell = one optimizer step):

    step:      s                        s+1
    batch:     indices from the (seed, epoch) permutation at offset s  (no sampler state)
    update:    algorithm.update(batch)  -> tqdm postfix, TensorBoard every log_every
    val:       every val_every: the first val_batches batches of val_data, same ones every time
    rollouts:  every eval_every: evaluator(policy, step) -> success rate etc. (RNG forked)
    save:      every checkpoint_every and at the end

Output directory:

    out_dir/run.yaml                       the run's plain config (a different run is refused)
    out_dir/checkpoints/step_00001000/     algorithm state + RNG states (safetensors + config.yaml)
    out_dir/checkpoints/latest             name of the newest complete checkpoint (atomic rename)
    out_dir/policy/                        the newest policy, for load_policy / serving / eval
    out_dir/tb/                            TensorBoard event files

Resume after a kill: the batch order is a pure function of (seed, step) and the torch, numpy
and Python RNG states are saved with the checkpoint, so on CPU a resumed run ends with the
same weights as an uninterrupted one (tests/training/test_resume.py). A checkpoint is written
to a temporary directory and renamed into place, and `latest` is replaced atomically after it.

Multi-GPU: launched with `torchrun --nproc_per_node=N -m robot_rl.cli train ...`, the trainer
sees WORLD_SIZE > 1, initialises torch.distributed (NCCL on GPUs, Gloo otherwise), gives each
rank a disjoint slice of every global batch and asks the algorithm to wrap its trained module
in DistributedDataParallel (`algorithm.distribute(device_ids)`); only rank 0 logs, evaluates
and writes checkpoints. (The code path is present; this machine has no GPU to test it.)
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import yaml

from robot_rl.training.checkpoint import load_checkpoint, restore_rng, rng_tensors, save_checkpoint

STATE_KIND = "training_state"


class Algorithm(Protocol):
    policy: Any

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, torch.Tensor]: ...
    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None: ...


Evaluator = Callable[[Any, int], dict[str, float]]


@dataclass(frozen=True)
class TrainerConfig:
    steps: int = 10_000
    batch_size: int = 64
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes
    log_every: int = 50
    val_every: int = 1000  # 0: never
    val_batches: int = 8
    eval_every: int = (
        0  # rollout evaluation every this many steps; 0: only at the end (if an evaluator is given)
    )
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    device: str = "auto"  # auto (cuda when available), cpu, cuda, cuda:1 ...
    progress: bool = True

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("steps, batch_size, checkpoint_every and keep_checkpoints must be >= 1")
        if min(self.log_every, self.val_every, self.eval_every, self.num_workers, self.val_batches) < 0:
            raise ValueError("log_every, val_every, eval_every, num_workers and val_batches must be >= 0")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class StepBatches(torch.utils.data.Sampler):
    """Index lists for steps start..steps-1; batch s is a pure function of (seed, s).

    Epoch e is a permutation drawn from a generator seeded with (seed, e); incomplete last
    batches are dropped. With world_size > 1 each rank takes its own stride of each batch.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1
    ):
        if n < batch_size:
            raise ValueError(f"dataset has {n} samples, fewer than one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.per_epoch = n // batch_size
        self._perm: tuple[int, torch.Tensor] | None = None

    def batch(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(self.n, generator=gen))
        idx = self._perm[1][i * self.batch_size : (i + 1) * self.batch_size]
        return idx[self.rank :: self.world].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.stop - self.start


class Trainer:
    def __init__(
        self,
        algorithm: Algorithm,
        train_data: torch.utils.data.Dataset,
        out_dir: str | os.PathLike,
        config: TrainerConfig = TrainerConfig(),
        val_data: torch.utils.data.Dataset | None = None,
        evaluator: Evaluator | None = None,
        run_config: dict[str, Any] | None = None,
    ):
        self.algorithm = algorithm
        self.train_data = train_data
        self.val_data = val_data
        self.evaluator = evaluator
        self.config = config
        self.out_dir = Path(out_dir)
        self.run_config = run_config or {}
        self.device = resolve_device(config.device)
        self.world, self.rank = _init_distributed(self.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        self.step = 0
        self._writer = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        cfg = self.config
        self._prepare_out_dir()
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)  # noqa: NPY002 (global RNG, saved and restored with checkpoints)
        random.seed(cfg.seed)
        self._resume()
        if self.world > 1 and hasattr(self.algorithm, "distribute"):
            self.algorithm.distribute([self.device.index] if self.device.type == "cuda" else None)
        sampler = StepBatches(
            len(self.train_data), cfg.batch_size, cfg.seed, self.step, cfg.steps, self.rank, self.world
        )
        loader = torch.utils.data.DataLoader(
            self.train_data,
            batch_sampler=sampler,
            num_workers=cfg.num_workers,
            collate_fn=getattr(self.train_data, "collate", torch.utils.data.default_collate),
            # Its own generator: creating the iterator must not draw from the global RNG, or a
            # resumed run (which creates one more iterator) would drift from an uninterrupted one.
            generator=torch.Generator().manual_seed(cfg.seed + self.step),
        )
        metrics: dict[str, float] = {}
        bar = _progress(cfg.steps, self.step, enabled=cfg.progress and self.is_main)
        for batch in loader:
            metrics = self.algorithm.update(_to_device(batch, self.device))
            self.step += 1
            bar.update(1)
            if cfg.log_every and self.step % cfg.log_every == 0:
                bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()})
                self._log("train", metrics)
            if self.val_data is not None and cfg.val_every and self.step % cfg.val_every == 0:
                metrics.update({f"val_{k}": v for k, v in self._validate().items()})
            if self.evaluator is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
                metrics.update(self._evaluate())
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save()
        bar.close()
        if self.evaluator is not None and not (cfg.eval_every and cfg.steps % cfg.eval_every == 0):
            metrics.update(self._evaluate())
        if self._writer is not None:
            self._writer.close()
        return metrics

    # ---- validation, evaluation, logging ----------------------------------------------------------
    def _validate(self) -> dict[str, float]:
        if not hasattr(self.algorithm, "validation_loss"):
            return {}
        cfg = self.config
        n = min(len(self.val_data), cfg.batch_size)
        batches = min(cfg.val_batches, len(self.val_data) // n)
        totals: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 17)  # the same noise every validation: comparable numbers
            for b in range(batches):
                batch = _to_device(_fetch(self.val_data, list(range(b * n, (b + 1) * n))), self.device)
                for k, v in self.algorithm.validation_loss(batch).items():
                    totals[k] = totals.get(k, 0.0) + v / batches
        self._log("val", totals)
        return totals

    def _evaluate(self) -> dict[str, float]:
        if not self.is_main:
            return {}
        np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
        with torch.random.fork_rng(devices=[]):
            result = self.evaluator(self.algorithm.policy, self.step)
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
        self._log("eval", result)
        return {f"eval_{k}": v for k, v in result.items()}

    def _log(self, group: str, metrics: dict[str, float]) -> None:
        if not self.is_main or not metrics:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out_dir / "tb"))
        for k, v in metrics.items():
            self._writer.add_scalar(f"{group}/{k}", v, self.step)

    # ---- checkpoints ------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def save(self) -> Path | None:
        if not self.is_main:
            return None
        tensors = {f"algo.{k}": v for k, v in self.algorithm.state_dict().items()}
        tensors.update(rng_tensors())
        meta = {"step": self.step, "trainer": _plain(self.config), "run": self.run_config}
        name = f"step_{self.step:08d}"
        path = save_checkpoint(self.checkpoint_dir / name, tensors, meta, kind=STATE_KIND)
        self.algorithm.policy.save(self.out_dir / "policy")
        tmp = self.checkpoint_dir / f".latest.tmp-{os.getpid()}"
        tmp.write_text(name + "\n")
        os.replace(tmp, self.checkpoint_dir / "latest")
        old = sorted(p for p in self.checkpoint_dir.glob("step_*") if p.is_dir())[
            : -self.config.keep_checkpoints
        ]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
        return path

    def _resume(self) -> None:
        latest = self.checkpoint_dir / "latest"
        if not latest.exists():
            return
        path = self.checkpoint_dir / latest.read_text().strip()
        tensors, meta = load_checkpoint(path, kind=STATE_KIND)
        algo = {k[5:]: v for k, v in tensors.items() if k.startswith("algo.")}
        try:
            self.algorithm.load_state_dict(algo)
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"{path}: checkpoint does not fit this algorithm ({exc})") from exc
        restore_rng(tensors)
        self.step = int(meta["step"])
        if self.is_main:
            print(f"resuming from {path} at step {self.step}")

    def _prepare_out_dir(self) -> None:
        if not self.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        run_file = self.out_dir / "run.yaml"
        plain = {"run": self.run_config, "trainer": _plain(self.config)}
        if run_file.exists():
            saved = yaml.safe_load(run_file.read_text()) or {}
            if saved.get("run") != plain["run"] or _without(
                saved.get("trainer"), "steps", "progress"
            ) != _without(plain["trainer"], "steps", "progress"):
                raise ValueError(
                    f"{self.out_dir} holds a different run (see {run_file}); resume with the same settings or "
                    "choose another --out"
                )
        tmp = run_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(plain, sort_keys=False))
        os.replace(tmp, run_file)


def _init_distributed(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist.get_world_size(), dist.get_rank()


def _fetch(dataset, indices: list[int]) -> Any:
    """One batch the way the DataLoader builds it: __getitems__ when present, then collate."""
    collate = getattr(dataset, "collate", torch.utils.data.default_collate)
    if hasattr(dataset, "__getitems__"):
        return collate(dataset.__getitems__(indices))
    return collate([dataset[i] for i in indices])


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return batch


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", dynamic_ncols=True)


def _plain(config: Any) -> dict[str, Any]:
    from robot_rl.config.loader import to_dict

    return to_dict(config)


def _without(d: dict | None, *names: str) -> dict:
    return {k: v for k, v in (d or {}).items() if k not in names}
