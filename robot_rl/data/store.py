"""The episode store: one zarr v3 group for teleop demos, sim rollouts and online RL logs.

Layout (the diffusion-policy ReplayBuffer layout, plus per-episode metadata columns):

    store.zarr/
      zarr.json                 attrs: robot_rl_store (format version), step_dt, image_codec
      data/<key>                (N, *shape) every step of every episode, concatenated over time;
                                one array per observation key plus action, reward, terminal,
                                intervention, timestamp. Images: one chunk per frame.
      meta/episode_ends         (E,) int64: episode i covers steps [ends[i-1], ends[i]).
                                Written LAST: an episode exists once its end is written.
      meta/task, meta/source, meta/robot, meta/operator, meta/config_hash   (E,) str
      meta/success              (E,) int8: 1 success, 0 failure, -1 unknown
      meta/start_time           (E,) float64, unix seconds

Appending episode e:

    data/<key>  resize + write rows   ─┐  a SIGKILL here leaves rows past ends[-1]
    meta/<column>[e] = ...            ─┤  (a torn tail): opening trims it and logs how
    meta/episode_ends[e] = end        ─┘  many steps were dropped; ends[e] is the commit

Every file write is atomic (zarr's LocalStore writes a temporary file and renames it), so a
chunk is either the old or the new version. `meta/episode_ends` has fill value -1: if the
process dies between growing the array and writing the new end, that entry reads -1 and
the episode is treated as torn.

    store = EpisodeStore.create("demo.zarr")
    store.append_episode({keys.JOINT_POS: q, keys.ACTION: a}, EpisodeMeta(task="lift", source="sim"))
    with store.begin_episode(EpisodeMeta(task="lift", source="teleop")) as writer:
        for step in stream:
            writer.append_step(step)           # flushed to disk in blocks, not held whole
        writer.end(success=True)               # or writer.discard(); an exception discards
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot_rl import keys

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SOURCES = ("teleop", "sim", "policy", "intervention")
BOOKKEEPING_DTYPES: dict[str, np.dtype] = {
    keys.REWARD: np.dtype(np.float32),
    keys.TERMINAL: np.dtype(np.bool_),
    keys.INTERVENTION: np.dtype(np.bool_),
    keys.TIMESTAMP: np.dtype(np.float64),
}
LOWDIM_CHUNK_BYTES = 1 << 20  # about 1 MiB per low-dim chunk: long sequential reads
FLUSH_BYTES = 16 << 20  # a streaming writer flushes once this much is buffered
_STR_COLUMNS = ("task", "source", "robot", "operator", "config_hash")


class DataError(ValueError):
    """A store, episode or array is malformed. The message names the store, array and episode."""


@dataclass(frozen=True)
class EpisodeMeta:
    """What is known about one episode besides its steps."""

    task: str = ""
    success: bool | None = None  # None: not judged
    source: Literal["teleop", "sim", "policy", "intervention"] = "sim"
    robot: str = ""  # hardware-config name
    operator: str = ""
    start_time: float = 0.0  # unix seconds; 0 means "now" when appended
    config_hash: str = ""  # hash of the configs that produced the episode

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"episode source must be one of {list(SOURCES)}, got {self.source!r}")

    @classmethod
    def coerce(cls, meta: EpisodeMeta | Mapping[str, Any] | None) -> EpisodeMeta:
        if meta is None:
            return cls()
        if isinstance(meta, EpisodeMeta):
            return meta
        from robot_rl.config.loader import from_dict

        return from_dict(cls, dict(meta), source="episode meta")


@dataclass(frozen=True)
class KeySpec:
    """Per-step shape and dtype of one `data/<key>` array."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3 and self.dtype == np.uint8

    @property
    def step_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def _image_codec(name: str):
    from zarr.codecs import BloscCodec

    if name == "none":
        return None
    cname, _, level = name.partition("-")
    if cname not in ("lz4", "zstd", "lz4hc", "zlib", "blosclz"):
        raise ValueError(f"unknown image codec {name!r} (lz4, zstd, zstd-<level>, none)")
    return BloscCodec(cname=cname, clevel=int(level) if level else 5, shuffle="bitshuffle")


class EpisodeStore:
    """A zarr v3 episode store on disk. Use `create` or `open`, not the constructor."""

    def __init__(self, path: Path, group, mode: str):
        self.path = path
        self._group = group
        self.mode = mode
        self._writer: EpisodeWriter | None = None
        self._ends = np.zeros(0, dtype=np.int64)
        self._load()

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        spec: Mapping[str, KeySpec | tuple] | None = None,
        *,
        step_dt: float = 0.1,
        image_codec: str = "lz4",
        overwrite: bool = False,
    ) -> EpisodeStore:
        """A new, empty store. `spec` maps key -> KeySpec or (shape, dtype); without it the
        keys are taken from the first episode appended. `step_dt` (s) fills in timestamps
        of episodes that bring none."""
        import zarr

        path = Path(path)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace it)")
            shutil.rmtree(path)
        _image_codec(image_codec)  # validate early
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        group.attrs.update(
            {"robot_rl_store": FORMAT_VERSION, "step_dt": float(step_dt), "image_codec": image_codec}
        )
        meta = group.require_group("meta")
        meta.create_array("episode_ends", shape=(0,), dtype="int64", chunks=(4096,), fill_value=-1)
        for col in _STR_COLUMNS:
            meta.create_array(col, shape=(0,), dtype=str, chunks=(4096,))
        meta.create_array("success", shape=(0,), dtype="int8", chunks=(4096,), fill_value=-1)
        meta.create_array("start_time", shape=(0,), dtype="float64", chunks=(4096,))
        group.require_group("data")
        store = cls(path, group, "a")
        if spec:
            store._create_arrays({k: _as_spec(k, v) for k, v in spec.items()})
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, mode: Literal["r", "a"] = "r") -> EpisodeStore:
        """Open an existing store. A torn tail (steps or metadata past the last episode end)
        is ignored in mode "r" and removed in mode "a"; both log a warning saying how much."""
        import zarr

        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        if not (path / "zarr.json").is_file():
            what = "does not exist" if not path.exists() else "is not a zarr v3 store (no zarr.json)"
            raise FileNotFoundError(f"{path}: {what}")
        try:
            group = zarr.open_group(str(path), mode="r" if mode == "r" else "r+", zarr_format=3)
        except Exception as exc:  # zarr raises many kinds for a bad zarr.json
            raise DataError(f"{path}: cannot open as a zarr group: {exc}") from exc
        if group.attrs.get("robot_rl_store") != FORMAT_VERSION:
            raise DataError(
                f"{path}: not a robot_rl episode store (attribute robot_rl_store is "
                f"{group.attrs.get('robot_rl_store')!r}, expected {FORMAT_VERSION})"
            )
        return cls(path, group, mode)

    def _array(self, name: str):
        try:
            # Every chunk gets a file, even one of all fill values (zarr skips those by
            # default), so a missing file always means a damaged store.
            return self._group[name].with_config({"write_empty_chunks": True})
        except KeyError:
            raise DataError(f"{self.path}: missing array {name}") from None
        except Exception as exc:
            raise DataError(f"{self.path}: cannot open array {name}: {exc}") from exc

    def _load(self) -> None:
        """Read episode_ends, find the committed prefix, and trim or ignore the torn tail."""
        ends_arr = self._array("meta/episode_ends")
        try:
            raw = np.asarray(ends_arr[:], dtype=np.int64)
        except Exception as exc:
            raise DataError(f"{self.path}: meta/episode_ends is unreadable: {exc}") from exc
        self._data_group()  # raises DataError when data/ is missing
        self._spec = {}
        self._arrays = {}
        # List data/ by folder, not through zarr, so a broken zarr.json is named, not raised from zarr.
        names = sorted(p.name for p in (self.path / "data").iterdir() if (p / "zarr.json").is_file())
        for name in names:
            arr = self._array(f"data/{name}")
            self._arrays[name] = arr
            self._spec[name] = KeySpec(tuple(arr.shape[1:]), np.dtype(arr.dtype))
        lengths = {k: a.shape[0] for k, a in self._arrays.items()}
        limit = min(lengths.values()) if lengths else 0
        # The committed prefix: strictly increasing positive ends that every array covers.
        n, prev = 0, 0
        for e in raw:
            if e <= prev or e > limit:
                break
            n, prev = n + 1, int(e)
        meta_lengths = {
            c: self._array(f"meta/{c}").shape[0] for c in (*_STR_COLUMNS, "success", "start_time")
        }
        short = [c for c, m in meta_lengths.items() if m < n]
        if short:
            raise DataError(
                f"{self.path}: meta/{short[0]} has {meta_lengths[short[0]]} entries for {n} committed episodes"
            )
        self._ends = raw[:n].copy()
        end = prev
        torn_steps = max(lengths.values(), default=end) - end
        torn_entries = len(raw) - n
        if torn_steps or torn_entries or any(m > n for m in meta_lengths.values()):
            verb = "removed" if self.mode == "a" else "ignored"
            log.warning(
                "%s: torn tail %s: %d step(s) past the last episode end (step %d) and %d unfinished "
                "episode entr%s",
                self.path,
                verb,
                torn_steps,
                end,
                torn_entries,
                "y" if torn_entries == 1 else "ies",
            )
            if self.mode == "a":
                self._trim(n, end)

    def _data_group(self):
        try:
            return self._group["data"]
        except KeyError:
            raise DataError(f"{self.path}: missing group data/") from None

    def _trim(self, n: int, end: int) -> None:
        ends_arr = self._group["meta/episode_ends"]
        if ends_arr.shape[0] > n:
            ends_arr[n:] = -1  # no stale end may reappear when the array grows again
            ends_arr.resize((n,))
        for c in (*_STR_COLUMNS, "success", "start_time"):
            col = self._group[f"meta/{c}"]
            if col.shape[0] > n:
                col.resize((n,))
        for key, arr in self._arrays.items():
            if arr.shape[0] != end:
                arr.resize((end, *arr.shape[1:]))
            # Frames a recorder wrote straight to disk before it died lie past the shape,
            # where zarr's resize does not look: remove them too.
            first_stale = -(-end // arr.chunks[0])
            folder = self.path / "data" / key / "c"
            if folder.is_dir():
                for entry in folder.iterdir():
                    if not (entry.name.isdigit() and int(entry.name) >= first_stale):
                        continue
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()

    def _create_arrays(self, spec: dict[str, KeySpec]) -> None:
        from zarr.codecs import BloscCodec

        if self._arrays:
            raise DataError(f"{self.path}: keys already defined")
        for k, dt in BOOKKEEPING_DTYPES.items():
            spec.setdefault(k, KeySpec((), dt))
        if keys.ACTION not in spec:
            raise DataError(f"{self.path}: a store needs an {keys.ACTION!r} key")
        data = self._data_group()
        codec_name = self._group.attrs.get("image_codec", "lz4")
        for name, s in sorted(spec.items()):
            if s.is_image and keys.is_image_key(name):
                chunks = (1, *s.shape)
                compressors = _image_codec(codec_name)
            else:
                rows = max(256, LOWDIM_CHUNK_BYTES // max(1, s.step_bytes))
                chunks = (rows, *s.shape)
                compressors = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
            fill = False if s.dtype == np.bool_ else 0
            self._arrays[name] = data.create_array(
                name,
                shape=(0, *s.shape),
                dtype=s.dtype,
                chunks=chunks,
                compressors=compressors,
                fill_value=fill,
                config={"write_empty_chunks": True},
            )
        self._spec = dict(sorted(spec.items()))

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._ends)

    @property
    def num_episodes(self) -> int:
        return len(self._ends)

    @property
    def num_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self._ends[:-1]]).astype(np.int64)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._spec)

    @property
    def spec(self) -> dict[str, KeySpec]:
        return dict(self._spec)

    @property
    def step_dt(self) -> float:
        return float(self._group.attrs.get("step_dt", 0.1))

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    def array(self, key: str):
        """The zarr array `data/<key>` (for bulk readers: samplers, converters)."""
        if key not in self._arrays:
            raise KeyError(f"{self.path}: no key {key!r} (keys: {', '.join(self._spec)})")
        return self._arrays[key]

    def episode_range(self, i: int) -> tuple[int, int]:
        n = len(self._ends)
        if not -n <= i < n:
            raise IndexError(f"{self.path}: episode {i} out of range ({n} episodes)")
        i %= n
        return (int(self._ends[i - 1]) if i else 0), int(self._ends[i])

    def read_steps(self, key: str, start: int, stop: int, episode: int | None = None) -> np.ndarray:
        """Rows [start, stop) of `data/<key>`; a read failure names the array and episode."""
        try:
            return np.asarray(self.array(key)[start:stop])
        except KeyError:
            raise
        except Exception as exc:
            where = f"episode {episode}" if episode is not None else f"steps {start}..{stop}"
            raise DataError(
                f"{self.path}: data/{key}, {where} (steps {start}..{stop}): cannot read: {exc}"
            ) from exc

    def episode(self, i: int, keys_: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Every step of episode i, as {key: (T, *shape) array}."""
        start, stop = self.episode_range(i)
        return {k: self.read_steps(k, start, stop, i) for k in (keys_ or self.keys)}

    def episode_meta(self, i: int) -> EpisodeMeta:
        self.episode_range(i)
        i %= len(self._ends)
        vals: dict[str, Any] = {}
        for c in _STR_COLUMNS:
            vals[c] = str(self._array(f"meta/{c}")[i])
        s = int(self._array("meta/success")[i])
        vals["success"] = None if s < 0 else bool(s)
        vals["start_time"] = float(self._array("meta/start_time")[i])
        try:
            return EpisodeMeta(**vals)
        except ValueError as exc:
            raise DataError(f"{self.path}: meta of episode {i}: {exc}") from exc

    def all_meta(self) -> dict[str, np.ndarray]:
        """Every metadata column for the committed episodes (success as int8, -1 unknown)."""
        n = len(self._ends)
        out = {c: np.array([str(v) for v in self._array(f"meta/{c}")[:n]], dtype=str) for c in _STR_COLUMNS}
        for c in ("success", "start_time"):
            out[c] = np.asarray(self._array(f"meta/{c}")[:n])
        return out

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            yield self.episode(i)

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, {len(self)} episodes, {self.num_steps} steps)"

    # ------------------------------------------------------------------ writing
    def _check_writable(self) -> None:
        if self.mode != "a":
            raise PermissionError(f"{self.path}: opened read-only (use EpisodeStore.open(path, mode='a'))")
        if self._writer is not None:
            raise RuntimeError(f"{self.path}: an episode is already being written; end or discard it first")

    def append_episode(
        self, steps: Mapping[str, np.ndarray], meta: EpisodeMeta | Mapping[str, Any] | None = None
    ) -> int:
        """Append one whole episode; returns its index. Missing reward/terminal/intervention/
        timestamp get defaults (0, False, False, start_time + k * step_dt)."""
        self._check_writable()
        writer = self.begin_episode(meta)
        try:
            writer.append(steps)
            return writer.end()
        except BaseException:
            if writer.open:
                writer.discard()
            raise

    def begin_episode(self, meta: EpisodeMeta | Mapping[str, Any] | None = None) -> EpisodeWriter:
        """A streaming writer for one episode (recorders). Steps are flushed to disk in blocks."""
        self._check_writable()
        meta = EpisodeMeta.coerce(meta)
        if not meta.start_time:
            meta = dataclasses.replace(meta, start_time=time.time())
        self._writer = EpisodeWriter(self, meta)
        return self._writer

    def _commit(self, meta: EpisodeMeta, end: int) -> int:
        e = len(self._ends)
        for c in _STR_COLUMNS:
            col = self._group[f"meta/{c}"]
            col.resize((e + 1,))
            col[e] = getattr(meta, c)
        col = self._group["meta/success"]
        col.resize((e + 1,))
        col[e] = -1 if meta.success is None else int(meta.success)
        col = self._group["meta/start_time"]
        col.resize((e + 1,))
        col[e] = meta.start_time
        # The commit point: the episode exists once this entry holds its end.
        ends = self._group["meta/episode_ends"]
        ends.resize((e + 1,))
        ends[e] = end
        self._ends = np.append(self._ends, np.int64(end))
        return e

    def _missing_chunks(self, key: str) -> list[int]:
        """First steps of committed chunks of data/<key> whose file is absent (zarr would
        silently read them as fill values)."""
        arr = self._arrays[key]
        rows = arr.chunks[0]
        n_chunks = -(-self.num_steps // rows)
        folder = self.path / "data" / key / "c"
        suffix = _chunk_suffix(arr.ndim)
        return [i * rows for i in range(n_chunks) if not (folder / f"{i}{suffix}").is_file()]

    def validate(self, check_chunks: bool = True, progress: bool = False) -> list[str]:
        """Every invariant; returns the problems found (empty: valid). Reads every chunk
        when `check_chunks`, so a corrupt chunk is reported with its array and episode."""
        problems: list[str] = []
        p = self.path
        ends = self._ends
        if len(ends) and (np.any(np.diff(ends) <= 0) or ends[0] <= 0):
            problems.append(f"{p}: meta/episode_ends is not strictly increasing")
        if self._spec and keys.ACTION not in self._spec:
            problems.append(f"{p}: missing array data/{keys.ACTION}")
        for k, dt in BOOKKEEPING_DTYPES.items():
            if self._spec and k not in self._spec:
                problems.append(f"{p}: missing array data/{k}")
            elif k in self._spec and self._spec[k].dtype != dt:
                problems.append(f"{p}: data/{k} has dtype {self._spec[k].dtype}, expected {dt}")
        for k, arr in self._arrays.items():
            if arr.shape[0] < self.num_steps:
                problems.append(f"{p}: data/{k} has {arr.shape[0]} steps, episodes need {self.num_steps}")
        for k in self._spec:
            for step in self._missing_chunks(k):
                e = int(np.searchsorted(ends, step, side="right"))
                where = f"episode {e}" if e < len(self) else "past the last episode"
                problems.append(f"{p}: data/{k}, {where}: chunk file for step {step} is missing")
                break  # one per array is enough to name it
        if problems or not check_chunks:
            return problems
        from tqdm import tqdm

        starts = self.episode_starts
        for i in tqdm(range(len(self)), desc="validate", unit="ep", disable=not progress):
            a, b = int(starts[i]), int(ends[i])
            for k in self._spec:
                try:
                    x = self.read_steps(k, a, b, i)
                except DataError as exc:
                    problems.append(str(exc))
                    continue
                if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
                    problems.append(f"{p}: data/{k}, episode {i}: holds NaN or inf")
                if k == keys.TIMESTAMP and np.any(np.diff(x) < 0):
                    problems.append(f"{p}: data/{k}, episode {i}: timestamps go backwards")
            try:
                self.episode_meta(i)
            except DataError as exc:
                problems.append(str(exc))
        return problems


def _chunk_suffix(ndim: int) -> str:
    return "/0" * (ndim - 1)


def _as_spec(key: str, value: KeySpec | tuple) -> KeySpec:
    if isinstance(value, KeySpec):
        return value
    try:
        shape, dtype = value
        return KeySpec(tuple(int(s) for s in shape), np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spec for key {key!r} must be (shape, dtype), got {value!r}") from exc


class EpisodeWriter:
    """Writes one episode step by step, past the store's committed end.

    Rows are buffered and written to `data/<key>` in the background every FLUSH_BYTES
    (one block in flight, so memory stays under about 2 x FLUSH_BYTES); nothing is visible to
    readers until `end()` writes the episode's end index. A crash or `discard()` leaves
    only a torn tail, which the next open removes.
    """

    def __init__(self, store: EpisodeStore, meta: EpisodeMeta):
        self._store = store
        self.meta = meta
        self._start = store.num_steps
        self._written = 0  # rows already flushed to disk
        self._buffer: dict[str, list[np.ndarray]] = {}
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self._frames: dict = {}  # image key -> FrameReader writing chunks directly, or None
        self._executor = None  # encodes and writes frames of one block in parallel
        self._flush_thread = None  # writes one block while the caller buffers the next
        self._pending = None
        self.open = True

    @property
    def num_steps(self) -> int:
        return self._written + self._buffered_rows

    def _where(self) -> str:
        return f"{self._store.path}: episode {len(self._store)}"

    def append_step(self, step: Mapping[str, Any]) -> None:
        """One time step: {key: per-step value}."""
        self.append({k: np.asarray(v)[None] for k, v in step.items()})

    def append(self, steps: Mapping[str, np.ndarray]) -> None:
        """A block of steps: {key: (T, *shape) array}, every key with the same T."""
        if not self.open:
            raise RuntimeError(f"{self._where()}: writer already ended or discarded")
        steps = {k: np.asarray(v) for k, v in steps.items()}
        lengths = {k: v.shape[0] if v.ndim else None for k, v in steps.items()}
        if any(t is None for t in lengths.values()):
            bad = next(k for k, t in lengths.items() if t is None)
            raise DataError(f"{self._where()}: array {bad!r} is a scalar, expected (T, ...) per-step rows")
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k}={t}" for k, t in sorted(lengths.items()))
            raise DataError(f"{self._where()}: arrays have mismatched lengths: {detail}")
        if not steps:
            raise DataError(f"{self._where()}: no arrays given")
        t = next(iter(lengths.values()))
        if t == 0:
            return
        store = self._store
        if not store._spec:
            store._create_arrays(_infer_spec(steps, self._where()))
        steps = self._fill_defaults(steps, t)
        checked = {k: _check_array(k, v, store._spec.get(k), self._where()) for k, v in steps.items()}
        missing = [k for k in store._spec if k not in checked]
        if missing:
            raise DataError(
                f"{self._where()}: missing key {missing[0]!r} (store keys: {', '.join(store._spec)})"
            )
        for k, v in checked.items():
            # A copy: recorders often reuse their arrays, and blocks are written in the background.
            self._buffer.setdefault(k, []).append(np.array(v, copy=True))
            self._buffered_bytes += v.nbytes
        self._buffered_rows += t
        if self._buffered_bytes >= FLUSH_BYTES:
            self.flush()

    def _fill_defaults(self, steps: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
        steps = dict(steps)
        steps.setdefault(keys.REWARD, np.zeros(t, np.float32))
        steps.setdefault(keys.TERMINAL, np.zeros(t, np.bool_))
        steps.setdefault(keys.INTERVENTION, np.full(t, self.meta.source == "intervention", np.bool_))
        if keys.TIMESTAMP not in steps:
            k0 = self.num_steps
            steps[keys.TIMESTAMP] = self.meta.start_time + (k0 + np.arange(t)) * self._store.step_dt
        return steps

    def flush(self, wait: bool = False) -> None:
        """Hand the buffered rows to the background writer (still past the committed end,
        so still invisible) and return; at most one block is in flight, so a recorder keeps
        appending while the previous block is encoded and written. `wait=True` returns only
        once they are on disk."""
        self._wait()
        if not self._buffered_rows:
            return
        a = self._start + self._written
        b = a + self._buffered_rows
        buffer = self._buffer
        self._written += self._buffered_rows
        self._buffer = {}
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self._pending = self._flusher().submit(self._write_block, a, b, buffer)
        if wait:
            self._wait()

    def _wait(self) -> None:
        """Block until the block in flight is on disk; re-raise its error here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _write_block(self, a: int, b: int, buffer: dict[str, list[np.ndarray]]) -> None:
        for k, parts in buffer.items():
            arr = self._store._arrays[k]
            frames = self._frame_writer(k)
            if frames is not None:
                # Image chunks straight to disk (encoded in parallel: blosc releases the GIL),
                # then grow the shape; chunks past the shape are invisible until then.
                rows = [row for part in parts for row in part]
                list(self._pool().map(frames.write, range(a, b), rows))
                if arr.shape[0] < b:
                    arr.resize((b, *arr.shape[1:]))
                continue
            block = parts[0] if len(parts) == 1 else np.concatenate(parts)
            if arr.shape[0] < b:
                arr.resize((b, *arr.shape[1:]))
            arr[a:b] = block

    def _frame_writer(self, key: str):
        if key not in self._frames:
            writer = None
            if self._store._spec[key].is_image:
                from robot_rl.data.frames import FrameReader

                candidate = FrameReader(self._store.path, key)
                writer = candidate if candidate.fast else None
            self._frames[key] = writer
        return self._frames[key]

    def _flusher(self):
        if self._flush_thread is None:
            from concurrent.futures import ThreadPoolExecutor

            self._flush_thread = ThreadPoolExecutor(max_workers=1)
        return self._flush_thread

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=4)  # encode + file writes; both release the GIL
        return self._executor

    def end(self, success: bool | None = None) -> int:
        """Flush, then commit the episode (metadata, then its end index). Returns its index."""
        if not self.open:
            raise RuntimeError(f"{self._where()}: writer already ended or discarded")
        if self.num_steps == 0:
            raise DataError(f"{self._where()}: an episode needs at least one step")
        self.flush()
        self._wait()
        meta = self.meta if success is None else dataclasses.replace(self.meta, success=success)
        index = self._store._commit(meta, self._start + self._written)
        self._close()
        return index

    def discard(self) -> None:
        """Drop the episode: buffered rows and rows already on disk past the committed end."""
        if not self.open:
            return
        try:
            self._wait()
        except Exception as exc:  # the rows are being dropped anyway
            log.warning("%s: discarding after a failed write: %s", self._where(), exc)
        self._buffer.clear()
        end = self._store.num_steps
        for arr in self._store._arrays.values():
            if arr.shape[0] > end:
                arr.resize((end, *arr.shape[1:]))
        self._close()

    def _close(self) -> None:
        for pool in (self._flush_thread, self._executor):
            if pool is not None:
                pool.shutdown()
        self._flush_thread = self._executor = None
        self.open = False
        self._store._writer = None

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.open:
            if exc_type is None:
                self.end()
            else:
                self.discard()


def _infer_spec(steps: Mapping[str, np.ndarray], where: str) -> dict[str, KeySpec]:
    spec = {}
    for k, v in steps.items():
        dt = BOOKKEEPING_DTYPES.get(k, v.dtype)
        if k not in BOOKKEEPING_DTYPES and v.dtype.kind == "f":
            dt = np.dtype(np.float32)  # keys.py: observations and actions are float32
        if keys.is_image_key(k) and (v.dtype != np.uint8 or v.ndim != 4):
            raise DataError(f"{where}: image array {k!r} must be uint8 (T, H, W, C), got {v.dtype} {v.shape}")
        spec[k] = KeySpec(tuple(v.shape[1:]), np.dtype(dt))
    return spec


def _check_array(key: str, value: np.ndarray, spec: KeySpec | None, where: str) -> np.ndarray:
    if spec is None:
        raise DataError(f"{where}: unknown key {key!r}: the store has no data/{key} array")
    if tuple(value.shape[1:]) != spec.shape:
        raise DataError(
            f"{where}: array {key!r} has per-step shape {tuple(value.shape[1:])}, the store holds {spec.shape}"
        )
    if value.dtype != spec.dtype:
        # float64 -> float32 is fine (numpy's default float); a change of kind is a bug upstream.
        same_kind = value.dtype.kind == spec.dtype.kind
        if not same_kind or (spec.dtype.kind in "iub" and not np.can_cast(value.dtype, spec.dtype)):
            raise DataError(f"{where}: array {key!r} has dtype {value.dtype}, the store holds {spec.dtype}")
        value = value.astype(spec.dtype)
    return value
