"""The service's counters and their Prometheus text exposition (format 0.0.4), written by hand."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

#: latency histogram buckets, seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    requests: Counter[int] = field(default_factory=Counter)  # by HTTP status
    rows: int = 0
    shadow: Counter[str] = field(default_factory=Counter)  # scored / failed / skipped
    swaps: int = 0
    batches_rolled: int = 0
    log_skipped_lines: int = 0
    housekeeping_error: str | None = None
    _buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    _sum: float = 0.0
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, seconds: float, rows: int) -> None:
        with self._lock:
            self.requests[200] += 1
            self.rows += rows
            self._sum += seconds
            self._count += 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self._buckets[i] += 1

    def refused(self, status: int) -> None:
        with self._lock:
            self.requests[status] += 1

    def exposition(self, *, champion: int | None, shadow: int | None, ready: bool, shadow_queue: int) -> str:
        """The Prometheus text format of every counter and gauge."""
        with self._lock:
            lines = [
                "# HELP mlgov_serve_requests_total Scoring requests answered, by HTTP status.",
                "# TYPE mlgov_serve_requests_total counter",
                *(f'mlgov_serve_requests_total{{status="{code}"}} {n}' for code, n in sorted(self.requests.items())),
                "# HELP mlgov_serve_rows_total Rows scored by the champion.",
                "# TYPE mlgov_serve_rows_total counter",
                f"mlgov_serve_rows_total {self.rows}",
                "# HELP mlgov_serve_request_seconds Latency of scored requests (validation to response).",
                "# TYPE mlgov_serve_request_seconds histogram",
                *(
                    f'mlgov_serve_request_seconds_bucket{{le="{b}"}} {n}'
                    for b, n in zip(BUCKETS, self._buckets, strict=True)
                ),
                f'mlgov_serve_request_seconds_bucket{{le="+Inf"}} {self._count}',
                f"mlgov_serve_request_seconds_sum {self._sum:.6f}",
                f"mlgov_serve_request_seconds_count {self._count}",
                "# HELP mlgov_serve_shadow_total Shadow challenger outcomes (scored, failed, skipped: queue full).",
                "# TYPE mlgov_serve_shadow_total counter",
                *(
                    f'mlgov_serve_shadow_total{{outcome="{k}"}} {self.shadow[k]}'
                    for k in ("scored", "failed", "skipped")
                ),
                "# HELP mlgov_serve_shadow_queue Requests waiting for the shadow.",
                "# TYPE mlgov_serve_shadow_queue gauge",
                f"mlgov_serve_shadow_queue {shadow_queue}",
                "# HELP mlgov_serve_model_swaps_total Champion swaps without a restart.",
                "# TYPE mlgov_serve_model_swaps_total counter",
                f"mlgov_serve_model_swaps_total {self.swaps}",
                "# HELP mlgov_serve_batches_rolled_total Landing batches written from the prediction log.",
                "# TYPE mlgov_serve_batches_rolled_total counter",
                f"mlgov_serve_batches_rolled_total {self.batches_rolled}",
                "# HELP mlgov_serve_log_skipped_lines Torn or invalid prediction-log lines skipped at start.",
                "# TYPE mlgov_serve_log_skipped_lines gauge",
                f"mlgov_serve_log_skipped_lines {self.log_skipped_lines}",
                "# HELP mlgov_serve_ready 1 when a verified champion is loaded.",
                "# TYPE mlgov_serve_ready gauge",
                f"mlgov_serve_ready {int(ready)}",
                "# HELP mlgov_serve_model_version Versions loaded (0: none).",
                "# TYPE mlgov_serve_model_version gauge",
                f'mlgov_serve_model_version{{role="champion"}} {champion or 0}',
                f'mlgov_serve_model_version{{role="shadow"}} {shadow or 0}',
            ]
        return "\n".join(lines) + "\n"
