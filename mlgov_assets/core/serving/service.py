"""The scoring service without HTTP: validate -> score with the champion -> log -> respond; the
log's fsync, the roll into landing batches and the alias poll run on their own threads, the shadow in
its own process.

One request reads the champion reference once (:class:`~.holder.ModelHolder`): every row of a
response, its ``model_version`` and its log line are that one version. The shadow gets the request's
validated rows through a bounded queue and is scored by another OS process
(:class:`~.shadow.ShadowProcess`): it never changes a response, its failure is logged as a ``shadow``
line with the error, and when the queue is full the shadow skips the request (counted) rather than
making anyone wait. ``reasons`` use the champion's SHAP TreeExplainer, built once per loaded version.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mlgov_assets.core.serving.holder import Loaded, ModelHolder
from mlgov_assets.core.serving.metrics import Metrics
from mlgov_assets.core.serving.predlog import (
    LOG_NAME,
    ModelOutput,
    PredictionLog,
    PredictionRecord,
    utc_iso,
)
from mlgov_assets.core.serving.requests import ParsedRequest, RequestGate, RequestRefused, parse_request
from mlgov_assets.core.serving.roller import BatchRoller, serving_dir
from mlgov_assets.core.serving.shadow import ShadowLoader, ShadowProcess, verified_loader

if TYPE_CHECKING:
    import pandas as pd

    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.serving.options import ServeOptions
    from mlgov_assets.core.settings import Settings

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Reason(BaseModel):
    model_config = _FROZEN

    feature: str
    contribution: float = Field(description="SHAP value in log-odds: how far the feature moved this score")


class RowPrediction(BaseModel):
    model_config = _FROZEN

    row_id: int = Field(description="the key for this row's delayed label (see README: Online scoring)")
    score: float
    decision: int
    reasons: list[Reason] | None = Field(default=None, description="features that pushed the score down most")


class PredictResponse(BaseModel):
    model_config = _FROZEN

    request_id: str
    model_version: int
    predictions: list[RowPrediction]
    explanation_method: str | None = None


class NotReady(Exception):
    """No verified champion is loaded (``/ready`` explains why)."""


class RowIds:
    """Unique, increasing row ids across restarts: microseconds since the epoch, bumped past the last."""

    def __init__(self, floor: int = -1):
        self._last = floor
        self._lock = threading.Lock()

    def take(self, n: int) -> list[int]:
        with self._lock:
            first = max(self._last + 1, time.time_ns() // 1000)
            self._last = first + n - 1
        return list(range(first, first + n))


_THREAD = threading.local()


def one_openmp_thread() -> None:
    """Score with one native thread in the calling thread (once per thread). OpenMP's thread count is
    per thread: a limit set on the main thread does not reach the server's worker threads, where
    HGB's per-predict OpenMP team then oversubscribes a small, busy host badly (seconds at p99). The
    BLAS limit set with it is process-wide; the one mechanism for both, on every scoring thread."""
    if getattr(_THREAD, "limited", False):
        return
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime, so the limit reaches it
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _THREAD.limited = True


def _warm_explainer() -> None:
    """Import shap off the request path (~2 s), so the first ``reasons`` request does not pay it."""
    import shap  # noqa: F401


class ScoringService:
    def __init__(
        self,
        settings: Settings,
        project: Project,
        policy: Policy,
        opts: ServeOptions,
        registry: Registry,
        *,
        shadow_loader: ShadowLoader = verified_loader,
    ):
        self.settings, self.project, self.policy, self.opts = settings, project, policy, opts
        self.metrics = Metrics()
        self.gate = RequestGate(project)  # the schema is built once, not per request
        self._explainers: dict[int, tuple[Any, str]] = {}  # champion version -> its TreeExplainer (or why not)
        self._explainer_lock = threading.Lock()
        state = serving_dir(settings)
        self.log = PredictionLog(
            state / LOG_NAME,
            fsync=opts.fsync,
            fsync_seconds=opts.fsync_seconds,
            max_bytes=opts.log_max_bytes,
            keep=opts.log_keep,
        )
        self.roller = BatchRoller(
            settings,
            project,
            roll_rows=opts.roll_rows,
            roll_seconds=opts.roll_seconds,
            min_rows=policy.monitoring.min_batch_rows,
        )
        self.recovered = self.roller.recover(self.log.path)
        self.ids = RowIds(floor=max(self.roller.state.rolled_through, self._last_logged_row()))
        self.shadow: ShadowProcess | None = None
        if opts.shadow:
            self.shadow = ShadowProcess(
                settings,
                project,
                log=self.log,
                metrics=self.metrics,
                maxsize=opts.shadow_queue,
                batch=opts.shadow_batch,
                linger=opts.shadow_linger_seconds,
                nice=opts.shadow_nice,
                idle=opts.shadow_idle,
                loader=shadow_loader,
            )
        self.holder = ModelHolder(
            registry,
            shadow=opts.shadow,
            on_swap=self._swapped,
            on_shadow=None if self.shadow is None else self.shadow.set_version,
        )
        self._stop = threading.Event()
        self._roll_now = threading.Event()
        self._threads: list[threading.Thread] = []

    def _last_logged_row(self) -> int:
        from mlgov_assets.core.serving.predlog import read_log

        read = read_log(self.log.path)
        self.metrics.log_skipped_lines = read.skipped
        return max((max(r.row_ids) for r in read.records if isinstance(r, PredictionRecord) and r.row_ids), default=-1)

    def _swapped(self, old: int | None, new: int) -> None:
        self.metrics.swaps += 1
        with self._explainer_lock:  # the old champion's explainer goes with it
            self._explainers = {v: e for v, e in self._explainers.items() if v == new}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.shadow is not None:
            self.shadow.start()
        self.holder.start(self.opts.poll_seconds)
        threading.Thread(target=_warm_explainer, name="mlgov-serve-warm", daemon=True).start()
        t = threading.Thread(target=self._housekeeping_loop, name="mlgov-serve-housekeeping", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Finish the shadow queue and end its process, roll what is due, fsync and close the log."""
        self.holder.stop()
        if self.shadow is not None:
            self.shadow.stop()
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self.roller.roll()
        self.log.close()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every request offered to the shadow is answered (tests, benchmarks)."""
        if self.shadow is not None:
            self.shadow.drain(timeout)

    def shadow_pending(self) -> int:
        """Requests waiting for (or being scored by) the shadow process."""
        return 0 if self.shadow is None else self.shadow.pending

    # ------------------------------------------------------------------ the request path
    def predict(self, body: bytes, *, reasons: int | None = None) -> PredictResponse:
        """Score one request; raises :class:`RequestRefused` (4xx) or :class:`NotReady` (503)."""
        t0 = time.perf_counter()
        one_openmp_thread()
        champion = self.holder.champion  # read once: this request is this version, whatever moves
        try:
            parsed = parse_request(
                self.project,
                body,
                self.opts,
                reasons=reasons,
                quote_chars=self.policy.ingestion.quote_chars,
                max_field_chars=self.policy.ingestion.max_field_chars,
                gate=self.gate,
            )
        except RequestRefused as exc:
            self.metrics.refused(exc.status)
            raise
        if champion is None:
            self.metrics.refused(503)
            raise NotReady(self.holder.problem or "no verified champion loaded")
        response = self._score(champion, parsed)
        latency = (time.perf_counter() - t0) * 1000
        out = ModelOutput(
            version=champion.version,
            scores=[p.score for p in response.predictions],
            decisions=[p.decision for p in response.predictions],
        )
        row_ids = [p.row_id for p in response.predictions]
        record = PredictionRecord(
            request_id=response.request_id,
            row_ids=row_ids,
            input_sha256=parsed.input_sha256,
            rows=parsed.rows,
            champion=out,
            latency_ms=round(latency, 3),
            time=utc_iso(),
        )
        self.log.append(record)
        if self.roller.add(row_ids, parsed.rows):
            self._roll_now.set()
        if self.shadow is not None:
            self.shadow.offer(response.request_id, parsed.rows)
        self.metrics.observe(latency / 1000, len(row_ids))
        return response

    def _score(self, champion: Loaded, parsed: ParsedRequest) -> PredictResponse:
        from mlgov_assets.core.monitoring.scoring import model_inputs, score_model

        features = model_inputs(self.project, parsed.raw)
        score, decision = score_model(champion.model, features)
        ids = self.ids.take(len(score))
        reasons: list[list[Reason]] | None = None
        method = None
        if parsed.reasons:
            reasons, method = self._reasons(champion, features, parsed.reasons)
        preds = [
            RowPrediction(
                row_id=ids[i],
                score=float(score[i]),
                decision=int(decision[i]),
                reasons=None if reasons is None else reasons[i],
            )
            for i in range(len(ids))
        ]
        return PredictResponse(
            request_id=str(ids[0]), model_version=champion.version, predictions=preds, explanation_method=method
        )

    def _explainer(self, champion: Loaded) -> tuple[Any, str]:
        """The champion's TreeExplainer (or why there is none), built once per loaded version."""
        from mlgov_assets.core.governance.explanations import tree_explainer
        from mlgov_assets.core.models.scoring import explained_pipeline

        with self._explainer_lock:  # two first requests build it once
            built = self._explainers.get(champion.version)
            if built is None:
                built = tree_explainer(explained_pipeline(champion.model))
                if self.holder.champion is champion:  # not one swapped out meanwhile
                    self._explainers[champion.version] = built
        return built

    def _reasons(self, champion: Loaded, features: pd.DataFrame, k: int) -> tuple[list[list[Reason]], str]:
        """The champion's explainer, as the ``explanations`` asset runs it (``explain_pipeline``: exact
        TreeExplainer where it is exact, the bounded permutation fallback otherwise)."""
        import numpy as np

        from mlgov_assets.core.governance.explanations import explain_pipeline, local_reasons_frame
        from mlgov_assets.core.models.scoring import explained_pipeline

        expl = explain_pipeline(
            explained_pipeline(champion.model),
            features[self.project.model_features],
            top_k_reasons=k,
            tree=self._explainer(champion),
        )
        frame = local_reasons_frame(expl)
        out: list[list[Reason]] = []
        for _, row in frame.iterrows():
            items = []
            for i in range(1, k + 1):
                name, value = row.get(f"reason_{i}"), row.get(f"reason_{i}_shap")
                if name is not None and value is not None and not np.isnan(value):
                    items.append(Reason(feature=str(name), contribution=float(value)))
            out.append(items)
        return out, expl.method_note

    # ------------------------------------------------------------------ off the request path
    def _housekeeping_loop(self) -> None:
        """The log's interval fsync and the roll into landing batches."""
        tick = min(self.opts.fsync_seconds, 0.5)
        while not self._stop.is_set():
            self._roll_now.wait(tick)
            self._roll_now.clear()
            try:
                self.log.sync()
                self.metrics.batches_rolled += len(self.roller.roll())
            except Exception as exc:  # a full disk: reported on /metrics and /ready, retried next tick
                self.metrics.housekeeping_error = f"{type(exc).__name__}: {exc}"[:500]
