"""The card's project section: which governed project a version belongs to, from its spec.

The spec described is the run's stored copy (``project/project.yaml``) when there is one; else the
current spec (``Facts.project``), but only if it is the one the version was trained under (its bytes
match the version's ``mlgov.project_sha256`` tag). Versions registered before those records existed
get the current spec, marked as not recorded with the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.audit.lineage.model import PROJECT_ARTIFACT
from mlgov_assets.core.audit.modelcard.schema import (
    ExcludedColumn,
    NotAvailable,
    ProjectSection,
    ProtectedAttribute,
    Source,
)

if TYPE_CHECKING:
    from mlgov_assets.core.audit.lineage.facts import Facts
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.project.spec import Band

#: Version tags the training path records (absent on versions registered before projects).
PROJECT_TAG = "mlgov.project"
PROJECT_SHA_TAG = "mlgov.project_sha256"


@dataclass(frozen=True)
class SpecCopy:
    """The spec text a card describes: the run's stored copy (``stored``) or the current file."""

    text: str
    sha256: str
    path: str
    stored: bool


def spec_copy(facts: Facts) -> SpecCopy | str:
    """The spec the version was trained under, or why it cannot be told."""
    recorded = facts.tags.get(PROJECT_SHA_TAG)
    art = facts.artifacts.get(PROJECT_ARTIFACT)
    if art is not None and art.text is not None:
        if recorded and art.sha256 != recorded:
            return f"the stored {PROJECT_ARTIFACT} hashes to {art.sha256}; the version's tag records {recorded}"
        return SpecCopy(text=art.text, sha256=art.sha256, path=PROJECT_ARTIFACT, stored=True)
    pf = facts.project
    if pf is None or pf.sha256 is None or pf.text is None:
        return f"{pf.path if pf is not None else 'the project spec'} could not be read"
    if recorded and recorded != pf.sha256:
        return f"the version was trained under project spec sha256 {recorded}; {pf.path} is now {pf.sha256}"
    return SpecCopy(text=pf.text, sha256=pf.sha256, path=pf.path, stored=False)


def version_project(facts: Facts) -> tuple[Project | None, str]:
    """(the project the version was trained under, "") or (None, why it cannot be described)."""
    from mlgov_assets.core.errors import ConfigError
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.project.spec import parse_project

    copy = spec_copy(facts)
    if isinstance(copy, str):
        return None, copy
    try:
        spec = parse_project(copy.text, source=copy.path)
    except ConfigError as exc:
        return None, str(exc)
    name = facts.tags.get(PROJECT_TAG)
    if name and name != spec.name:
        return None, f"the version belongs to project {name!r}; {copy.path} is project {spec.name!r}"
    repo = Path(facts.paths.project_dir)
    return Project(spec=spec, sha256=copy.sha256, spec_path=repo / copy.path, repo=repo), ""


def _holdout(facts: Facts, project: Project) -> tuple[str, dict[str, Any] | None]:
    """(the holdout in words, the split record when the holdout's lineage carries one)."""
    from mlgov_assets.core.project.spec import Split

    data_json = facts.artifact_json("provenance/data.json") or {}
    lineage = data_json.get("holdout") if isinstance(data_json, dict) else None
    split = lineage.get("split") if isinstance(lineage, dict) else None
    record = split if isinstance(split, dict) else None
    declared = project.spec.data.holdout
    if isinstance(declared, Split):
        how = "stratified" if declared.stratify else "unstratified"
        text = f"a {how} split of {project.train_file}: fraction {declared.fraction}, seed {declared.seed}"
        return text + ("" if record else " (no split record with this version)"), record
    source = lineage.get("source") if isinstance(lineage, dict) else None
    return f"file {source or project.holdout_file}", record


def project_section(facts: Facts, source: Source) -> ProjectSection | NotAvailable:
    """The project section (``source`` cites the spec copy), or why it is not available."""
    project, why = version_project(facts)
    if project is None:
        return NotAvailable(not_available=why)
    spec = project.spec
    holdout, split = _holdout(facts, project)
    protected = [
        ProtectedAttribute(column=p.column, judged_as=p.column)
        if p.bands is None
        else ProtectedAttribute(column=p.column, judged_as=p.bands.name, bands=_band_labels(p.bands))
        for p in spec.protected
    ]
    fields: dict[str, Any] = {"split": split} if split is not None else {}
    return ProjectSection(
        name=project.name,
        spec_sha256=project.sha256,
        recorded_with_version=PROJECT_SHA_TAG in facts.tags or PROJECT_ARTIFACT in facts.artifacts,
        target=project.label,
        favourable=project.favourable,
        protected=protected,
        exclusions=[ExcludedColumn(column=e.column, reason=e.reason, note=e.note) for e in spec.exclude],
        model_features=project.model_features,
        holdout=holdout,
        source=source,
        **fields,
    )


def _band_labels(bands: Band) -> list[str]:
    from mlgov_assets.core.project.schemas import band_labels

    return band_labels(bands.edges, bands.labels)
