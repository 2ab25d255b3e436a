"""Alerts: logged once, posted to a loopback webhook; an unreachable webhook never raises."""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import ClassVar

import numpy as np

from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.ledger import MonitoringPaths, read_jsonl

# --------------------------------------------------------------------------- alerts and webhook


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep pytest output clean
        pass


def test_alerts_are_logged_once_and_posted_to_the_webhook(tmp_path):
    paths = MonitoringPaths(tmp_path / "monitoring")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received.clear()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        rec = raise_alert(
            paths,
            "dataset_drift",
            "batch x drifted",
            batch_id="x",
            evidence={"share": np.float64(0.6)},
            webhook_url=url,
        )
        dup = raise_alert(paths, "dataset_drift", "batch x drifted", batch_id="x", webhook_url=url)
    finally:
        server.shutdown()
    assert rec["webhook"] == {"ok": True, "status": 204} and dup is None
    assert len(_Hook.received) == 1
    ctype, payload = _Hook.received[0]
    assert ctype == "application/json" and payload["kind"] == "dataset_drift" and payload["evidence"]["share"] == 0.6
    lines = read_jsonl(paths.alerts)
    assert len(lines) == 1 and lines[0]["alert_id"] == rec["alert_id"]


def test_an_unreachable_webhook_is_logged_not_raised(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now

    class Log:
        messages: ClassVar[list] = []

        def warning(self, m):
            self.messages.append(m)

    log = Log()
    t0 = time.perf_counter()
    rec = raise_alert(
        MonitoringPaths(tmp_path / "m"),
        "performance_breach",
        "b",
        webhook_url=f"http://127.0.0.1:{port}/",
        log=log,
        timeout=1.0,
    )
    assert time.perf_counter() - t0 < 2.0
    assert rec["webhook"]["ok"] is False and any("webhook" in m for m in log.messages)
