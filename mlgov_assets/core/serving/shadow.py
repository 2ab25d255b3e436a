"""The shadow challenger, scored in a separate OS process (``spawn``), at a lower CPU priority.

Scoring the shadow in a thread of the serving process made its pandas/pipeline glue compete for the
GIL with the request path (+28 % at p99 for single rows). Here the request path only hands the
request's validated raw rows (``request_id``, list of ``column -> raw text``) to a bounded
:mod:`multiprocessing` queue with ``put_nowait``: when it is full the shadow skips the request
(counted). The child process (``SCHED_IDLE`` where Linux allows it, else ``os.nice``) loads the
shadow only through the verified loader (``monitoring.scoring.load_verified``: artifact hashes
checked before anything is unpickled), scores
the requests waiting (up to ``shadow_batch``, gathered for ``shadow_linger_seconds``) in one call and
sends back one :class:`ShadowResult` per request. A parent thread writes the ``shadow`` lines, so
the prediction log keeps a single writer.

Hot swap: the parent sets the wanted version in a shared integer; the child reloads before its next
batch when it moved, and every result names the version that really scored it. A child that dies
(crash, SIGKILL) is replaced with backoff on fresh queues (a killed reader can leave a queue's lock
held); the requests it had not answered are recorded as failed ``shadow`` lines naming the death.
The child exits by itself when its parent is gone (it watches ``os.getppid``).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.serving.predlog import ModelOutput, ShadowRecord, utc_iso

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.queues import Queue

    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.serving.metrics import Metrics
    from mlgov_assets.core.serving.predlog import PredictionLog
    from mlgov_assets.core.settings import Settings

Rows = list[dict[str, str | None]]
#: the shadow model for (settings, version); must be a module-level function (it crosses ``spawn``)
ShadowLoader = Callable[["Settings", int], Any]

_NO_VERSION = 0
_BACKOFF = (0.5, 30.0)  # first and longest wait before restarting a dead child
_HEALTHY_SECONDS = 60.0  # a child that lived this long resets the backoff
_RETRY_LOAD_SECONDS = 30.0  # a shadow version that failed to load is tried again after this


@dataclass(frozen=True)
class ShadowJob:
    request_id: str
    rows: Rows


@dataclass(frozen=True)
class ShadowResult:
    request_id: str
    output: ModelOutput
    latency_ms: float


def verified_loader(settings: Settings, version: int) -> Any:
    """The default loader: ``Registry.load_governed`` (sha256 of every artifact verified first)."""
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.monitoring.scoring import load_verified

    return load_verified(Registry(settings), version)


@dataclass(frozen=True)
class _ChildArgs:
    settings: Settings
    project: Project
    batch: int
    linger: float
    nice: int
    idle: bool
    parent_pid: int
    loader: ShadowLoader


class ShadowProcess:
    """The parent side: the queue the request path feeds, the child, and the thread writing its lines."""

    def __init__(
        self,
        settings: Settings,
        project: Project,
        *,
        log: PredictionLog,
        metrics: Metrics,
        maxsize: int,
        batch: int,
        linger: float,
        nice: int = 10,
        idle: bool = True,
        loader: ShadowLoader = verified_loader,
    ):
        self._ctx = mp.get_context("spawn")  # never fork a threaded server
        self._args = _ChildArgs(settings, project, batch, linger, nice, idle, os.getpid(), loader)
        self._log, self._metrics, self._maxsize = log, metrics, maxsize
        self._wanted: Any = self._ctx.Value("q", _NO_VERSION, lock=False)  # one aligned int64: atomic
        self._lock = threading.Lock()  # the queues and the in-flight table move together
        self._in_flight: dict[str, int] = {}  # request id -> the version wanted when offered
        self._jobs: Queue[ShadowJob | None]
        self._results: Queue[list[ShadowResult]]
        self._proc: SpawnProcess | None = None
        self._closing = threading.Event()
        self._collector: threading.Thread | None = None
        self.restarts = 0

    # ------------------------------------------------------------------ parent API
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    @property
    def pending(self) -> int:
        """Requests offered and not yet answered (queued or being scored)."""
        return len(self._in_flight)

    def set_version(self, version: int | None) -> None:
        """The shadow to score with from the next batch on (``None``: none; offers are then dropped)."""
        self._wanted.value = _NO_VERSION if version is None else version

    def start(self) -> None:
        with self._lock:
            self._new_queues()
            self._spawn()
        self._collector = threading.Thread(target=self._collect, name="mlgov-serve-shadow", daemon=True)
        self._collector.start()

    def offer(self, request_id: str, rows: Rows) -> None:
        """The request path's only cost: one ``put_nowait``; a full queue skips (counted)."""
        version = int(self._wanted.value)
        if version == _NO_VERSION or self._closing.is_set():
            return
        with self._lock:
            self._in_flight[request_id] = version
            try:
                self._jobs.put_nowait(ShadowJob(request_id, rows))
            except queue.Full:
                del self._in_flight[request_id]
                self._metrics.shadow["skipped"] += 1

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every offered request is answered (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self, timeout: float = 30.0) -> None:
        """No more offers; the child finishes its queue and exits (terminated, then killed, if it does
        not); the collector writes its last lines. Requests it never answered: failed lines."""
        self._closing.set()
        proc = self._proc
        if proc is not None and proc.is_alive():
            with contextlib.suppress(queue.Full):
                self._jobs.put(None, timeout=5)
            proc.join(timeout)
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if self._collector is not None:
            self._collector.join(timeout)
        self._fail_in_flight("shadow process stopped before scoring this request")
        _retire(self._jobs)
        _retire(self._results)

    # ------------------------------------------------------------------ the collector thread
    def _new_queues(self) -> None:
        """Fresh queues (caller holds ``_lock``): a dead child's may hold a reader lock forever."""
        if hasattr(self, "_jobs"):
            _retire(self._jobs)
            _retire(self._results)
        self._jobs = self._ctx.Queue(maxsize=self._maxsize)
        self._results = self._ctx.Queue()

    def _spawn(self) -> None:
        """A child on the current queues (caller holds ``_lock``)."""
        proc = self._ctx.Process(
            target=_child_main,
            args=(self._args, self._jobs, self._results, self._wanted),
            name="mlgov-serve-shadow",
            daemon=True,
        )
        proc.start()
        self._proc = proc
        self._started = time.monotonic()

    def _collect(self) -> None:
        backoff = _BACKOFF[0]
        while True:
            results = self._results
            try:
                self._write(results.get(timeout=0.2))
                continue
            except queue.Empty:
                pass
            except Exception:  # a torn message from a dying child: its requests fail below
                pass
            proc = self._proc
            if proc is None or proc.is_alive():
                continue
            if self._closing.is_set():
                return
            backoff = _BACKOFF[0] if time.monotonic() - self._started > _HEALTHY_SECONDS else backoff
            self._fail_in_flight(f"shadow process died (exit code {proc.exitcode}); restarted", fresh_queues=True)
            if self._closing.wait(backoff):
                return
            backoff = min(backoff * 2, _BACKOFF[1])
            with self._lock:
                if self._closing.is_set():
                    return
                self._spawn()
                self.restarts += 1

    def _write(self, results: list[ShadowResult]) -> None:
        now = utc_iso()
        for r in results:
            with self._lock:
                if self._in_flight.pop(r.request_id, None) is None:
                    continue  # already recorded as failed (its child was declared dead)
            self._metrics.shadow["failed" if r.output.error else "scored"] += 1
            try:
                self._log.append(
                    ShadowRecord(request_id=r.request_id, shadow=r.output, latency_ms=r.latency_ms, time=now)
                )
            except Exception:  # the log itself failed (a full disk): on /metrics, never raised
                self._metrics.housekeeping_error = "prediction log: a shadow line could not be written"

    def _fail_in_flight(self, why: str, *, fresh_queues: bool = False) -> None:
        """Every request the (dead or stopped) child had not answered: a failed ``shadow`` line each."""
        with self._lock:
            lost, self._in_flight = self._in_flight, {}
            if fresh_queues:
                self._new_queues()
        now = utc_iso()
        for request_id, version in lost.items():
            self._metrics.shadow["failed"] += 1
            out = ModelOutput(version=version, error=why)
            try:
                self._log.append(ShadowRecord(request_id=request_id, shadow=out, latency_ms=0.0, time=now))
            except Exception:
                self._metrics.housekeeping_error = "prediction log: a shadow line could not be written"


def _retire(q: Queue[Any]) -> None:
    """Drop a queue without waiting on it: its feeder thread may be blocked on a pipe no live process
    reads (it would hang the interpreter's exit)."""
    q.cancel_join_thread()
    q.close()


# ---------------------------------------------------------------------- the child process
def _child_main(
    args: _ChildArgs, jobs: Queue[ShadowJob | None], results: Queue[list[ShadowResult]], wanted: Any
) -> None:
    """Score batches of waiting requests until the stop sentinel, or until the parent is gone."""
    from mlgov_assets.core.serving.service import one_openmp_thread

    with contextlib.suppress(OSError):  # not permitted here: the child still runs, at the parent's priority
        os.nice(args.nice)
    if args.idle:  # runs only on a core nothing else wants; preempted at once when a request needs it
        with contextlib.suppress(OSError, AttributeError):  # not Linux: the nice value alone
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    one_openmp_thread()
    model = _ChildModel(args)
    while True:
        batch, stop = _next_batch(jobs, args)
        if batch:
            results.put(model.score(batch, int(wanted.value)))
        if stop:
            return


def _next_batch(jobs: Queue[ShadowJob | None], args: _ChildArgs) -> tuple[list[ShadowJob], bool]:
    """Wait for one request (checking every half second that the parent lives), then take what
    arrives within ``linger`` (at most ``batch``). ``True``: stop after these."""
    while True:
        if os.getppid() != args.parent_pid:
            return [], True
        try:
            first = jobs.get(timeout=0.5)
            break
        except queue.Empty:
            continue
    if first is None:
        return [], True
    batch = [first]
    deadline = time.monotonic() + args.linger
    while len(batch) < args.batch:
        remaining = deadline - time.monotonic()
        try:
            job = jobs.get(timeout=remaining) if remaining > 0 else jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:
            return batch, True
        batch.append(job)
    return batch, False


class _ChildModel:
    """The shadow loaded in the child: reloaded when the wanted version moves."""

    def __init__(self, args: _ChildArgs):
        self.args = args
        self.version = _NO_VERSION
        self.model: Any = None
        self.load_error: str | None = None
        self.failed_at = 0.0

    def _ensure(self, version: int) -> None:
        retry = self.load_error is not None and time.monotonic() - self.failed_at > _RETRY_LOAD_SECONDS
        if version == self.version and not retry:
            return
        self.version, self.model, self.load_error = version, None, None
        try:
            self.model = self.args.loader(self.args.settings, version)
        except Exception as exc:  # refused by verification, or unloadable: every request says so
            self.load_error = f"shadow v{version} not loaded: {type(exc).__name__}: {exc}"[:500]
            self.failed_at = time.monotonic()

    def score(self, batch: list[ShadowJob], version: int) -> list[ShadowResult]:
        """One model call for the batch's rows together; a failure is every request's result."""
        import pandas as pd

        from mlgov_assets.core.monitoring.scoring import model_inputs, score_model
        from mlgov_assets.core.serving.requests import request_columns

        t0 = time.perf_counter()
        self._ensure(version)
        try:
            if self.load_error is not None:
                raise RuntimeError(self.load_error)
            project = self.args.project
            frames = [
                model_inputs(project, pd.DataFrame(request_columns(project, job.rows), dtype=object)) for job in batch
            ]
            frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            score, decision = score_model(self.model, frame)
            bounds = [0, *itertools.accumulate(len(f) for f in frames)]
            outs = [
                ModelOutput(version=version, scores=score[a:b].tolist(), decisions=decision[a:b].tolist())
                for a, b in itertools.pairwise(bounds)
            ]
        except Exception as exc:  # a failing shadow is recorded, never raised
            outs = [ModelOutput(version=version, error=f"{type(exc).__name__}: {exc}"[:500])] * len(batch)
        latency = round((time.perf_counter() - t0) * 1000, 3)
        return [ShadowResult(job.request_id, out, latency) for job, out in zip(batch, outs, strict=True)]
