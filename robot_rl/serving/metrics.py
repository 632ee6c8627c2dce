"""Server counters, latency percentiles, and Prometheus text over a tiny HTTP server.

The inference threads only append to ring buffers and bump counters under one lock; the
percentiles are computed when someone asks (a status request or a scrape), never on the
request path. The HTTP server listens on loopback unless told otherwise.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

QUANTILES = (0.5, 0.9, 0.99)


class LatencyWindow:
    """The last `size` latencies (seconds) and their percentiles."""

    def __init__(self, size: int = 4096):
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentiles_ms(self) -> dict[str, float]:
        if not self._values:
            return {}
        arr = np.fromiter(self._values, dtype=np.float64) * 1e3
        return {f"p{round(q * 100)}": float(np.quantile(arr, q)) for q in QUANTILES}


class ServerMetrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.requests: Counter[tuple[str, str]] = Counter()  # (policy, outcome)
        self.errors: Counter[str] = Counter()  # error code
        self.batches: Counter[str] = Counter()
        self.batched_requests: Counter[str] = Counter()
        self.latency: dict[str, LatencyWindow] = {}  # server-side, receive to reply
        self.infer_latency: dict[str, LatencyWindow] = {}  # policy call only

    def batch_done(self, policy: str, size: int, infer_s: float, server_s: list[float]) -> None:
        """One batch of `size` requests: policy time, and each request's receive-to-reply time."""
        with self._lock:
            self.batches[policy] += 1
            self.batched_requests[policy] += size
            self.requests[(policy, "ok")] += size
            infer_window, window = self.infer_latency.get(policy), self.latency.get(policy)
            if window is None:
                infer_window = self.infer_latency[policy] = LatencyWindow()
                window = self.latency[policy] = LatencyWindow()
            infer_window.add(infer_s)
            for s in server_s:
                window.add(s)

    def error(self, code: str, policy: str = "") -> None:
        with self._lock:
            self.errors[code] += 1
            self.requests[(policy, code)] += 1

    def latency_ms(self, policy: str) -> dict[str, float]:
        with self._lock:
            window = self.latency.get(policy)
            return window.percentiles_ms() if window else {}

    def prometheus(self, policies: dict[str, dict]) -> str:
        """Prometheus text exposition format 0.0.4. `policies`: name -> {version, queue_depth}."""
        lines = [
            "# HELP robot_rl_serving_uptime_seconds Seconds since the server started.",
            "# TYPE robot_rl_serving_uptime_seconds gauge",
            f"robot_rl_serving_uptime_seconds {time.monotonic() - self.started:.3f}",
            "# HELP robot_rl_serving_requests_total Requests by policy and outcome (ok or an error code).",
            "# TYPE robot_rl_serving_requests_total counter",
        ]
        with self._lock:
            for (policy, outcome), n in sorted(self.requests.items()):
                lines.append(
                    f'robot_rl_serving_requests_total{{policy="{_esc(policy)}",outcome="{outcome}"}} {n}'
                )
            lines += [
                "# HELP robot_rl_serving_batches_total Inference batches run.",
                "# TYPE robot_rl_serving_batches_total counter",
            ]
            for policy, n in sorted(self.batches.items()):
                lines.append(f'robot_rl_serving_batches_total{{policy="{_esc(policy)}"}} {n}')
            lines += [
                "# HELP robot_rl_serving_batched_requests_total Requests served in batches (divide by batches for mean size).",
                "# TYPE robot_rl_serving_batched_requests_total counter",
            ]
            for policy, n in sorted(self.batched_requests.items()):
                lines.append(f'robot_rl_serving_batched_requests_total{{policy="{_esc(policy)}"}} {n}')
            for metric, windows, help_text in (
                ("robot_rl_serving_latency_seconds", self.latency, "Server time from receive to reply"),
                ("robot_rl_serving_inference_seconds", self.infer_latency, "Policy call time per batch"),
            ):
                lines += [f"# HELP {metric} {help_text}, recent window.", f"# TYPE {metric} summary"]
                for policy, window in sorted(windows.items()):
                    for name, ms in window.percentiles_ms().items():
                        q = int(name[1:]) / 100
                        lines.append(f'{metric}{{policy="{_esc(policy)}",quantile="{q:g}"}} {ms / 1e3:.6f}')
        lines += [
            "# HELP robot_rl_serving_model_version Version of the weights each policy serves.",
            "# TYPE robot_rl_serving_model_version gauge",
        ]
        for name, info in sorted(policies.items()):
            lines.append(f'robot_rl_serving_model_version{{policy="{_esc(name)}"}} {info["version"]}')
        lines += [
            "# HELP robot_rl_serving_queue_depth Requests waiting for inference.",
            "# TYPE robot_rl_serving_queue_depth gauge",
        ]
        for name, info in sorted(policies.items()):
            lines.append(f'robot_rl_serving_queue_depth{{policy="{_esc(name)}"}} {info["queue_depth"]}')
        return "\n".join(lines) + "\n"


def _esc(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsHTTPServer:
    """GET /metrics -> Prometheus text; anything else 404. Runs in a daemon thread."""

    def __init__(self, host: str, port: int, render: Callable[[], str]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: scrapes every few seconds would flood stderr
                pass

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
