"""The MLflow registry, governed: registration with artifact hashes, gate verdicts on each
version, and the only functions that move the ``champion`` alias.

Every call names its MLflow run and store explicitly; mlflow is imported only when used.
Alias moves hold the promotion lock (:func:`promotion_guard`: a file lock, or a database lock in the
prod profile) and are compare-and-set: the caller states which champion
it evaluated against, and the move aborts (:class:`ChampionChanged`) if it changed in between.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from mlgov_assets.core.errors import MlgovError, Refusal
from mlgov_assets.core.faults import fault_point
from mlgov_assets.core.integrity import copy_verified, hash_tree, manifest_digest, verify_tree
from mlgov_assets.core.locks import guard, pid_alive
from mlgov_assets.core.models.store import artifact_tree, is_local_location, seed_store, uri_to_path
from mlgov_assets.core.provenance import identity
from mlgov_assets.core.settings import Settings

CHAMPION = "champion"
PREVIOUS = "previous-champion"
TAG = "mlgov."
GATE = "mlgov.gate."
HISTORY_TAG = "mlgov.champion_history"
DEAD_RUN_SWEEP_LIMIT = 20  # runs ended per call: the sweep runs on every promotion, so it stays bounded
VERIFIED_MODELS_KEPT = 4  # deserialized sklearn models a Registry keeps (load_model)
TAG_LIMIT = 4500  # MLflow tag values are capped (5000 chars); full evidence goes to a run artifact
_JSON_OBJECT: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])

# MLflow 3 saves sklearn models with skops and refuses HGB pipelines unless these are trusted
# (stack notes); they are recorded in the MLmodel file so loading needs nothing more.
SKOPS_TRUSTED = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


PROMOTION_LOCK = "promotion.lock"


def promotion_guard(
    settings: Settings, *, purpose: str, timeout: float | None = None
) -> contextlib.AbstractContextManager[None]:
    """The promotion lock of ``settings``' project, from the profile's one lock factory
    (``core/locks.guard``): ``<home>/locks/promotion.lock`` embedded, a database lock in prod."""
    return guard(
        f"mlgov:promotion:{settings.project_name}:{settings.model_name}",
        path=settings.lock_dir / PROMOTION_LOCK,
        purpose=purpose,
        timeout=timeout,
    )


class PromotionRefused(Refusal):
    """The version did not pass every gate required by the current policy."""


class ChampionChanged(Refusal):
    """Compare-and-set failed: the champion moved after the challenger was compared with it."""


class ChampionState(BaseModel):
    """The registry's champion bookkeeping: the alias, the previous-champion alias, the history tag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    champion: int | None
    previous: int | None
    history: list[int]


class VersionInfo(BaseModel):
    """One registered model version as the registry records it (version tags, run params/metrics)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int
    run_id: str | None
    source: str | None = None
    created: int | None = None
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)

    def require_run_id(self) -> str:
        """The MLflow run that holds this version's evidence; mlgov registers every version from one."""
        if self.run_id is None:
            raise MlgovError(f"version {self.version} of {self.name} has no MLflow run to hold its evidence")
        return self.run_id


def _clip(text: str) -> str:
    return text if len(text) <= TAG_LIMIT else text[: TAG_LIMIT - 20] + "...(truncated)"


@dataclass(frozen=True)
class GateRecord:
    name: str
    passed: bool
    policy_sha256: str
    severity: str
    summary: str


class _Flavor:
    """An MLflow flavor module as ``Model.log`` calls it, minus the ``validate_serving_input`` switch,
    which ``Model.log`` reads and then forwards to the flavor's ``save_model`` (``mlflow.sklearn``
    refuses unknown arguments; ``mlflow.pyfunc.log_model`` takes none). Same saved files."""

    def __init__(self, module: Any):
        self.module = module

    def save_model(self, **kwargs: Any) -> None:
        kwargs.pop("validate_serving_input", None)
        self.module.save_model(**kwargs)


class Registry:
    def __init__(self, settings: Settings):
        import mlflow

        self.settings = settings.ensure()
        if not settings.is_prod:  # prod: the tracking server owns its (PostgreSQL) store
            seed_store(settings.mlflow_dir / "mlflow.db")
        self.name = settings.model_name
        self._mlflow = mlflow
        self.activate()
        self.client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
        self._verified: OrderedDict[tuple[int, bool, str], Any] = OrderedDict()  # see load_model

    def activate(self) -> None:
        """Point MLflow's process-wide fluent API (used by ``log_model``/``register_model``) at
        this store; called on every use, so two state dirs in one process never mix."""
        self._mlflow.set_tracking_uri(self.settings.tracking_uri)
        self._mlflow.set_registry_uri(self.settings.tracking_uri)

    # ------------------------------------------------------------------ experiment / model
    def experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.name)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(self.name, artifact_location=self.settings.artifact_location())

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            with contextlib.suppress(MlflowException):  # created concurrently
                self.client.create_registered_model(
                    self.name, description="Governed by mlgov: promoted only through the champion asset."
                )

    def log_model_version(
        self,
        *,
        model: Any,
        flavor: str,
        run_name: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        input_example: Any,
        text_artifacts: dict[str, str],
        pip_requirements: list[str],
    ) -> VersionInfo:
        """Log a model in a new MLflow run, record the sha256 of every artifact file, and
        register it as a new version."""
        mlflow = self._mlflow
        from mlflow.models import infer_signature

        self._ensure_registered_model()
        owner = {TAG + "pid": str(os.getpid()), TAG + "host": socket.gethostname()}  # for end_dead_runs
        with mlflow.start_run(experiment_id=self.experiment_id(), run_name=run_name, tags={**tags, **owner}) as run:
            mlflow.log_params(params)
            fault_point("registry.in_run")
            mlflow.log_metrics(metrics)
            for name, text in text_artifacts.items():
                mlflow.log_text(text, name)
            predict = model.predict_proba(input_example) if hasattr(model, "predict_proba") else None
            with warnings.catch_warnings():  # the integer-columns hint: inputs are validated upstream
                warnings.simplefilter("ignore", UserWarning)
                signature = infer_signature(input_example, predict[:, 1] if predict is not None else None)
            # validate_serving_input=False: MLflow would reload the model it just saved and predict the
            # input example (~0.3 s a model); the governed path makes that proof itself, from verified
            # bytes: the verified loader loads the challenger to mitigate it, the fairness and SHAP
            # steps score the loaded versions, the champion's checks re-hash it (and, outside the run
            # that promoted it, score the holdout with it again).
            if flavor == "sklearn":
                info = mlflow.models.Model.log(
                    artifact_path=None,
                    name="model",
                    flavor=_Flavor(mlflow.sklearn),
                    flavor_name="mlflow.sklearn",
                    sk_model=model,
                    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                    signature=signature,
                    input_example=input_example,
                    pip_requirements=pip_requirements,
                    skops_trusted_types=SKOPS_TRUSTED,
                    pyfunc_predict_fn="predict_proba",
                    validate_serving_input=False,
                )
            else:  # a governed python model (e.g. a fairness-mitigated wrapper)
                from mlgov_assets.core.models.serving import MitigatedPyfunc

                info = mlflow.models.Model.log(
                    artifact_path=None,
                    name="model",
                    flavor=_Flavor(mlflow.pyfunc),
                    flavor_name="pyfunc.CustomPythonModel",  # what mlflow.pyfunc.log_model records
                    python_model=MitigatedPyfunc(model),
                    signature=signature,
                    input_example=input_example,
                    pip_requirements=pip_requirements,
                    validate_serving_input=False,
                )
            model_dir = self.client.get_logged_model(info.model_id).artifact_location
            if is_local_location(model_dir):
                model_dir = str(uri_to_path(model_dir))
            with artifact_tree(model_dir, self.settings.tracking_uri) as tree:  # prod: hash what the server holds
                manifest = hash_tree(tree)
            digest = manifest_digest(manifest)
            mlflow.log_text(json.dumps(manifest, indent=2, sort_keys=True), "integrity/model_manifest.json")
            integrity = {
                TAG + "artifact_manifest_sha256": digest,
                TAG + "artifact_manifest": _clip(json.dumps(manifest, sort_keys=True)),
                TAG + "model_dir": model_dir,
            }
            mlflow.set_tags(integrity)
            trainer = {TAG + "trained_by": tags.get(TAG + "trained_by") or identity()}  # separation of duties
            mv = mlflow.register_model(info.model_uri, self.name, tags={**tags, **trainer, **integrity})
        return self.version_info(int(mv.version)).model_copy(update={"run_id": run.info.run_id})

    # ------------------------------------------------------------------ reading
    def version_info(self, version: int) -> VersionInfo:
        mv = self.client.get_model_version(self.name, str(version))
        run = self.client.get_run(mv.run_id) if mv.run_id else None
        return VersionInfo(
            name=self.name,
            version=int(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            created=mv.creation_timestamp,
            aliases=list(mv.aliases or []),
            tags=dict(mv.tags or {}),
            metrics=dict(run.data.metrics) if run else {},
            params=dict(run.data.params) if run else {},
        )

    def find_by_fingerprint(self, fp: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name = '{self.name}' and tags.`mlgov.fingerprint` = '{fp}'")
        except MlflowException:
            return None
        return min((int(v.version) for v in found), default=None)

    def versions(self) -> list[int]:
        from mlflow.exceptions import MlflowException

        try:
            return sorted(int(v.version) for v in self.client.search_model_versions(f"name = '{self.name}'"))
        except MlflowException:
            return []

    def champion_version(self) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(self.name, CHAMPION).version)
        except MlflowException:
            return None

    def champion_history(self) -> list[int]:
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(self.name).tags or {}
        except MlflowException:
            return []
        return [int(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]

    # ------------------------------------------------------------------ gates
    def record_gate(
        self,
        version: int,
        name: str,
        *,
        passed: bool,
        severity: str,
        policy_sha256: str,
        summary: str,
        evidence: dict[str, Any],
    ) -> None:
        """Write a gate verdict onto the model version (tags) and its full evidence to the run."""
        prefix = f"{GATE}{name}"
        self.client.set_model_version_tag(self.name, str(version), prefix, "passed" if passed else "failed")
        self.client.set_model_version_tag(self.name, str(version), f"{prefix}.policy_sha256", policy_sha256)
        self.client.set_model_version_tag(self.name, str(version), f"{prefix}.severity", severity)
        self.client.set_model_version_tag(self.name, str(version), f"{prefix}.summary", _clip(summary))
        run_id = self.client.get_model_version(self.name, str(version)).run_id
        if run_id:
            self.client.log_text(
                run_id, json.dumps(evidence, indent=2, sort_keys=True, default=str), f"gates/{name}.json"
            )

    def gate_records(self, version: int) -> dict[str, GateRecord]:
        tags = self.version_info(version).tags
        out = {}
        for key, value in tags.items():
            if key.startswith(GATE) and key.count(".") == 2:
                name = key[len(GATE) :]
                out[name] = GateRecord(
                    name=name,
                    passed=value == "passed",
                    policy_sha256=tags.get(f"{key}.policy_sha256", ""),
                    severity=tags.get(f"{key}.severity", ""),
                    summary=tags.get(f"{key}.summary", ""),
                )
        return out

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> None:
        """An artifact from bytes as they are (no decode/re-encode, unlike ``log_image``)."""
        name = Path(artifact_path).name
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / name).write_bytes(data)
            self.client.log_artifact(run_id, str(Path(tmp) / name), str(Path(artifact_path).parent))

    def artifact_text(self, run_id: str, artifact_path: str) -> str | None:
        """A text artifact of a run (e.g. ``project/project.yaml``); None when the run has none there."""
        try:
            text: str = self._mlflow.artifacts.load_text(f"runs:/{run_id}/{artifact_path}")
        except Exception:
            return None
        return text

    def gate_details(self, version: int, name: str) -> dict[str, JsonValue]:
        """The ``details`` of a gate's evidence as recorded on the version's run (``{}`` when the
        gate was never recorded or its evidence cannot be read)."""
        run_id = self.client.get_model_version(self.name, str(version)).run_id
        try:
            text = self._mlflow.artifacts.load_text(f"runs:/{run_id}/gates/{name}.json")
        except Exception:
            return {}
        return _JSON_OBJECT.validate_python(json.loads(text).get("details") or {})

    def promotion_blockers(self, version: int, required: list[str], policy_sha256: str) -> list[str]:
        """Why ``version`` may not be champion under the policy with hash ``policy_sha256``
        (empty list: it passed every required gate under exactly this policy)."""
        records = self.gate_records(version)
        problems = []
        for gate in required:
            rec = records.get(gate)
            if rec is None:
                problems.append(f"gate '{gate}' was never evaluated for version {version}")
            elif rec.policy_sha256 != policy_sha256:
                problems.append(
                    f"gate '{gate}' was evaluated under policy {rec.policy_sha256[:12]}, "
                    f"not the current policy {policy_sha256[:12]}: re-evaluate (mlgov train)"
                )
            elif not rec.passed:
                problems.append(f"gate '{gate}' failed: {rec.summary}")
        return problems

    def end_dead_runs(self) -> list[str]:
        """Runs still RUNNING although the mlgov process that started them (on this host) is dead,
        e.g. killed mid-training: ended as FAILED, with who ended them. At most
        ``DEAD_RUN_SWEEP_LIMIT`` per call; returns their ids."""
        exp = self.client.get_experiment_by_name(self.name)
        if exp is None:
            return []
        found = self.client.search_runs(
            [exp.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=DEAD_RUN_SWEEP_LIMIT
        )
        ended = []
        for run in found:
            tags = run.data.tags
            pid = tags.get(TAG + "pid", "")
            if tags.get(TAG + "host") != socket.gethostname() or not pid.isdigit() or pid_alive(int(pid)):
                continue
            self.client.set_tag(run.info.run_id, TAG + "ended_by", f"pid {os.getpid()}: its process {pid} had died")
            self.client.set_terminated(run.info.run_id, status="FAILED")
            ended.append(run.info.run_id)
        return ended

    # ------------------------------------------------------------------ the alias (CAS)
    def previous_version(self) -> int | None:
        """The version the ``previous-champion`` alias names (None if unset)."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(self.name, PREVIOUS).version)
        except MlflowException:
            return None

    def champion_state(self) -> ChampionState:
        """Alias, previous alias and history as the registry holds them now."""
        return ChampionState(
            champion=self.champion_version(), previous=self.previous_version(), history=self.champion_history()
        )

    def apply_champion_state(self, target: ChampionState) -> None:
        """Write ``target`` (history tag, champion alias, previous alias), idempotently. The caller
        holds the promotion lock and has logged its intent (``core/governance/transaction``): a crash
        between these writes is completed from that intent by the next process."""
        if target.champion is None:
            raise ValueError("a champion state to apply must name a champion")
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(target.history))
        fault_point("promotion.after_history")
        self.client.set_registered_model_alias(self.name, CHAMPION, str(target.champion))
        fault_point("promotion.after_alias")
        if target.previous is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, str(target.previous))
        elif self.previous_version() is not None:
            self.client.delete_registered_model_alias(self.name, PREVIOUS)

    def move_champion(self, version: int, *, expected_current: int | None, history_op: str) -> int | None:
        """Compare-and-set the champion alias under the promotion lock (no decision log: the
        governed path is ``core/governance/promotion``, which logs an intent first).

        ``expected_current`` is the champion the caller's decision was based on; if another
        promotion moved it since, :class:`ChampionChanged` is raised and nothing changes.
        Returns the previous champion. ``history_op`` is ``push`` (promotion) or ``pop`` (rollback).
        """
        with promotion_guard(self.settings, purpose=f"move champion of {self.name} (pid {os.getpid()})"):
            now = self.champion_state()
            current = now.champion
            if current != expected_current:
                raise ChampionChanged(
                    f"champion is version {current}, but the decision was made against "
                    f"{expected_current}; re-evaluate the challenger against the new champion"
                )
            history = [*now.history, version] if history_op == "push" else now.history[:-1]
            previous = current if current is not None and current != version else now.previous
            self.apply_champion_state(ChampionState(champion=version, previous=previous, history=history))
            return current

    # ------------------------------------------------------------------ loading, verified
    def _recorded_manifest(self, version: int) -> tuple[dict[str, str], str]:
        """The sha256 manifest recorded at registration (checked against its digest tag) and the
        location of the model directory it describes (a path, or the server's artifact URI in prod)."""
        from mlgov_assets.core.integrity import IntegrityError

        tags = self.version_info(version).tags
        if TAG + "artifact_manifest" not in tags:
            raise IntegrityError(f"version {version} has no recorded artifact manifest: refusing to load it")
        try:
            manifest = json.loads(tags[TAG + "artifact_manifest"])
        except json.JSONDecodeError:
            raise IntegrityError(
                f"version {version}: the recorded artifact manifest is not valid JSON "
                "(truncated or edited): refusing to load it"
            ) from None
        if manifest_digest(manifest) != tags.get(TAG + "artifact_manifest_sha256"):
            raise IntegrityError(f"version {version}: the recorded manifest does not match its digest tag")
        return manifest, tags[TAG + "model_dir"]

    def verify_artifacts(self, version: int) -> dict[str, str]:
        """Re-hash the version's artifact files against the manifest recorded at registration."""
        manifest, model_dir = self._recorded_manifest(version)
        with artifact_tree(model_dir, self.settings.tracking_uri) as tree:
            verify_tree(tree, manifest)
        return manifest

    def load_model(self, version: int, *, flavor: str = "auto") -> Any:
        """Load a registered model from bytes that were verified: the artifact tree is copied to a
        private temporary directory, hashed on the way in (``integrity.copy_verified``), and the
        model is deserialized from that copy. Verifying the registry's files and then loading them
        would leave a window in which they could be swapped; the copy closes it. Any mismatch raises
        ``IntegrityError`` naming every changed, missing or extra file, and nothing is deserialized.

        A run loads the same version several times (mitigation, fairness, SHAP, the champion's
        checks): an sklearn model deserialized from a verified copy is kept (the last few, keyed by
        version and manifest digest), and a later load re-hashes the registry's files against the
        manifest before handing it out; any mismatch raises as above. Pyfunc models are not kept:
        each holds its private copy on disk while it lives."""
        manifest, model_dir = self._recorded_manifest(version)
        pyfunc = flavor == "pyfunc" or (
            flavor == "auto" and self.version_info(version).tags.get(TAG + "flavor") == "pyfunc"
        )
        key = (version, pyfunc, manifest_digest(manifest))
        if key in self._verified:
            with artifact_tree(model_dir, self.settings.tracking_uri) as tree:
                verify_tree(tree, manifest)
            self._verified.move_to_end(key)
            return self._verified[key]
        model = self._load_verified_copy(manifest, model_dir, pyfunc=pyfunc)
        if not pyfunc:
            self._verified[key] = model
            while len(self._verified) > VERIFIED_MODELS_KEPT:
                self._verified.popitem(last=False)
        return model

    def _load_verified_copy(self, manifest: dict[str, str], model_dir: str, *, pyfunc: bool) -> Any:
        import weakref

        workdir = Path(tempfile.mkdtemp(prefix="mlgov-verified-model-"))
        try:
            with artifact_tree(model_dir, self.settings.tracking_uri) as tree:
                local = copy_verified(tree, manifest, workdir / "model")
            loader = self._mlflow.pyfunc.load_model if pyfunc else self._mlflow.sklearn.load_model
            model = loader(str(local))
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        if pyfunc:  # a python model may read its artifact files lazily: keep the copy while it lives
            weakref.finalize(model, shutil.rmtree, str(workdir), True)
        else:  # skops/sklearn models are fully in memory once loaded
            shutil.rmtree(workdir, ignore_errors=True)
        return model

    def load_governed(self, version: int) -> Any:
        """The verified model as the object mlgov scores (:mod:`.scoring`): an sklearn pipeline,
        or for pyfunc versions the governed object inside (e.g. a ``MitigatedModel``)."""
        model = self.load_model(version)
        if hasattr(model, "unwrap_python_model"):
            inner = model.unwrap_python_model()
            return getattr(inner, "model", inner)
        return model
