"""Scoring a batch: the champion, and in shadow the latest challenger, loaded only verified."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, ScoredBatch, ScoringInfo
from mlgov_assets.core.monitoring.batches import ROW_ID
from mlgov_assets.core.monitoring.ledger import SCORED, BatchLedger, Log, MonitoringError, MonitoringPaths

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings


def model_inputs(project: Project, batch: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns plus the sensitive ones (a mitigated model needs them), built
    exactly as training built them (the project's ``build_features``)."""
    from mlgov_assets.core.project.features import build_features

    cols = [c for c in project.columns if c in batch.columns]
    table = build_features(project, batch[cols], require_label=False)
    features: pd.DataFrame = table[project.model_features + project.sensitive]
    return features


def load_verified(registry: Registry, version: int) -> Any:
    """A registered model, loaded through ``Registry.load_governed`` (sha256 of every artifact verified
    first; a governed pyfunc such as a mitigated model is unwrapped after that check)."""
    loader = getattr(registry, "load_governed", None) or registry.load_model
    return loader(version)


def score_model(model: Any, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(score, decision) per row: P(favourable outcome) and what the model decides (``core.models.scoring``)."""
    from mlgov_assets.core.models.scoring import score_frame

    scored = score_frame(model, features)
    return scored["score"].to_numpy(dtype=np.float64), scored["decision"].to_numpy(dtype=np.int64)


def latest_challenger(registry: Registry, champion: int | None) -> int | None:
    """The shadow model: the most recently registered version that is not the champion, of the
    champion's own variant when there is one (an unmitigated challenger can never ship when
    mitigation is on, so shadowing it would compare against nothing useful). In approval mode, the
    version awaiting approval (alias ``staging``) is the shadow: approvers see it on real batches."""
    from mlgov_assets.core.governance.approval import staged_version

    staged = staged_version(registry)
    if staged is not None and staged != champion:
        return staged
    others = [v for v in registry.versions() if v != champion]
    if not others:
        return None
    if champion is not None:
        variant = registry.version_info(champion).tags.get("mlgov.variant")
        same = [v for v in others if registry.version_info(v).tags.get("mlgov.variant") == variant]
        if same:
            return max(same)
    return max(others)


def _integrity_alert(paths: MonitoringPaths, summary: str, batch_id: str, webhook: str | None, log: Log | None) -> None:
    raise_alert(paths, "integrity", summary, severity="ERROR", batch_id=batch_id, webhook_url=webhook, log=log)


def score_batch(
    settings: Settings,
    project: Project,
    registry: Registry,
    batch: AcceptedBatch,
    *,
    champion: int | None = None,
    load_model: Callable[[int], Any] | None = None,
    webhook_url: str | None = None,
    log: Log | None = None,
) -> ScoredBatch:
    """Champion scores and, in shadow, the latest challenger's, for every row of a validated batch.

    ``champion``: the version to score with (the one the batch's drift verdict was judged against);
    default the registry's champion now. ``load_model``: how a version is loaded (default
    :func:`load_verified`; any loader given must verify the same way). A champion that fails artifact
    verification stops scoring; a shadow that fails it is dropped with an alert. Raises
    :class:`MonitoringError` for an invalid batch or no champion.
    """
    from mlgov_assets.core.integrity import IntegrityError

    batch_id = batch.intake.batch_id
    if not batch.intake.valid:
        raise MonitoringError(f"refusing to score batch {batch_id}: it failed validation (quarantined)")
    load = load_model or (lambda v: load_verified(registry, v))
    champion = registry.champion_version() if champion is None else champion
    if champion is None:
        raise MonitoringError("no champion yet: train one (`mlgov train` or Materialize all) before monitoring batches")
    paths = MonitoringPaths.of(settings)
    features = model_inputs(project, batch.frame)
    try:
        champ_model = load(champion)
    except IntegrityError as exc:
        _integrity_alert(paths, f"champion v{champion} failed artifact verification: {exc}", batch_id, webhook_url, log)
        raise
    score, decision = score_model(champ_model, features)
    out = pd.DataFrame({ROW_ID: batch.frame[ROW_ID].to_numpy(), "champion_score": score, "champion_decision": decision})
    shadow = latest_challenger(registry, champion)
    shadow_gates: dict[str, bool] = {}
    if shadow is not None:
        try:
            out["shadow_score"], out["shadow_decision"] = score_model(load(shadow), features)
            shadow_gates = {name: rec.passed for name, rec in registry.gate_records(shadow).items()}
        except IntegrityError as exc:
            summary = f"shadow v{shadow} failed artifact verification and was not used: {exc}"
            _integrity_alert(paths, summary, batch_id, webhook_url, log)
            shadow = None
    info = ScoringInfo(
        batch_id=batch_id,
        champion_version=int(champion),
        shadow_version=None if shadow is None else int(shadow),
        shadow_gates=shadow_gates,
    )
    BatchLedger(paths).update(
        batch_id, status=SCORED, champion_version=info.champion_version, shadow_version=info.shadow_version
    )
    return ScoredBatch(frame=out, scoring=info)
