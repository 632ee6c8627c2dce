"""Checkpoints: safetensors for tensors, plain YAML for everything else, written atomically.

A checkpoint is a directory holding two files:

    <dir>/model.safetensors   every tensor (weights, EMA, optimizer moments, RNG states)
    <dir>/config.yaml         plain YAML: format version, kind, the sha256 of model.safetensors,
                              and whatever metadata the writer adds (configs, step, ...)

    save_checkpoint(path, tensors, metadata, kind="diffusion_policy")
    tensors, metadata = load_checkpoint(path, kind="diffusion_policy")

Nothing is pickled; loading needs no training code. The directory is first written under a
temporary name beside the target and then renamed into place, so a crash leaves either the
previous checkpoint or the new one, never half of one. On loading, the sha256 is checked before
the tensor file is parsed: a truncated or edited file is refused with CheckpointError naming it.

Optimizer state (torch.optim) is flattened to tensors by `optimizer_tensors` and restored by
`load_optimizer_tensors`, so an algorithm's whole state fits in one safetensors file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
TENSOR_FILE = "model.safetensors"
META_FILE = "config.yaml"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, tampered with, or of the wrong kind."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any], kind: str
) -> Path:
    """Write `tensors` and `metadata` (plain YAML types only) to directory `path`, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(contiguous, str(tmp / TENSOR_FILE))
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "sha256": sha256_of(tmp / TENSOR_FILE),
        **metadata,
    }
    with open(tmp / META_FILE, "w") as f:
        yaml.safe_dump(meta, f, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)
    return path


def load_checkpoint(
    path: str | os.PathLike, kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint directory; returns (tensors on CPU, metadata)."""
    path = Path(path)
    meta = read_metadata(path)
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path}: is a {meta.get('kind')!r} checkpoint, expected {kind!r}")
    tensor_path = path / TENSOR_FILE
    if not tensor_path.is_file():
        raise CheckpointError(f"{tensor_path}: missing")
    actual = sha256_of(tensor_path)
    if actual != meta.get("sha256"):
        raise CheckpointError(
            f"{tensor_path}: sha256 {actual[:16]}... does not match {str(meta.get('sha256'))[:16]}... recorded in "
            f"{META_FILE}: the file is truncated, corrupted or was modified; refusing to load it"
        )
    try:
        tensors = load_file(str(tensor_path), device="cpu")
    except SafetensorError as exc:
        raise CheckpointError(f"{tensor_path}: not a valid safetensors file ({exc})") from exc
    return tensors, meta


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    meta_path = path / META_FILE
    if not path.is_dir():
        raise CheckpointError(f"{path}: no checkpoint directory there")
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: missing (is {path} a checkpoint directory?)")
    try:
        meta = yaml.safe_load(meta_path.read_text())
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{meta_path}: not valid YAML: {exc}") from exc
    if not isinstance(meta, dict) or "sha256" not in meta or "kind" not in meta:
        raise CheckpointError(f"{meta_path}: not a robot-rl checkpoint (no kind / sha256)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    return meta


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """Flatten an optimizer's per-parameter state and numeric hyper-parameters into tensors."""
    state = optimizer.state_dict()
    out: dict[str, torch.Tensor] = {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            out[f"{prefix}.state.{idx}.{name}"] = torch.as_tensor(value).clone()
    for g, group in enumerate(state["param_groups"]):
        for name, value in group.items():
            if name == "params" or isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float) or (
                isinstance(value, tuple) and all(isinstance(v, float) for v in value)
            ):
                out[f"{prefix}.group.{g}.{name}"] = torch.tensor(value, dtype=torch.float64)
    return out


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str
) -> None:
    """Inverse of optimizer_tensors; the optimizer must be built over the same parameters."""
    state = optimizer.state_dict()
    new_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith(f"{prefix}.state."):
            continue
        idx, name = key[len(prefix) + 7 :].split(".", 1)
        new_state.setdefault(int(idx), {})[name] = value.clone()
    for g, group in enumerate(state["param_groups"]):
        for name, value in list(group.items()):
            key = f"{prefix}.group.{g}.{name}"
            if key in tensors:
                t = tensors[key]
                group[name] = tuple(t.tolist()) if isinstance(value, tuple) else t.item()
    state["state"] = new_state
    optimizer.load_state_dict(state)


def rng_tensors() -> dict[str, torch.Tensor]:
    """The global RNG states a training step consumes (torch CPU, CUDA if present, numpy, random)."""
    import random

    import numpy as np

    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is what we must save)
    out["rng.numpy.keys"] = torch.from_numpy(np_state[1].astype(np.int64))
    out["rng.numpy.pos"] = torch.tensor([np_state[2], np_state[3]], dtype=torch.int64)
    out["rng.numpy.gauss"] = torch.tensor([np_state[4]], dtype=torch.float64)
    py_state = random.getstate()
    out["rng.python"] = torch.tensor(py_state[1], dtype=torch.int64)
    return out


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    pos, has_gauss = tensors["rng.numpy.pos"].tolist()
    keys = tensors["rng.numpy.keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, pos, has_gauss, float(tensors["rng.numpy.gauss"].item())))  # noqa: NPY002
    random.setstate((3, tuple(int(v) for v in tensors["rng.python"].tolist()), None))
