"""Child process for test_sigkill: appends deterministic episodes forever until killed.

    python sigkill_writer.py STORE

Episode i is make_episode(i); half are written with append_episode, half streamed step
by step with a tiny flush size, so kills land in every phase of a write.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from data_synthetic import make_episode  # noqa: E402

from robot_rl.data import store as store_mod  # noqa: E402
from robot_rl.data.store import EpisodeMeta, EpisodeStore  # noqa: E402

store_mod.FLUSH_BYTES = 8000  # flush every few steps
path = Path(sys.argv[1])
store = EpisodeStore.open(path, mode="a") if path.exists() else EpisodeStore.create(path)
print(f"ready {len(store)}", flush=True)
while True:
    i = len(store)
    ep = make_episode(i)
    meta = EpisodeMeta(task=f"task{i}", success=bool(i % 2), source="sim", start_time=1.0 + i)
    if i % 2:
        store.append_episode(ep, meta)
    else:
        with store.begin_episode(meta) as writer:
            for k in range(len(ep[store_mod.keys.ACTION])):
                writer.append_step({key: v[k] for key, v in ep.items()})
    print(f"committed {i}", flush=True)
