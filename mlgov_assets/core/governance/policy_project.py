"""The policy against a project: does every sensitive feature the policy names exist in the data?

A policy is parsed on its own (:mod:`~mlgov_assets.core.governance.policy`); which columns are
sensitive is the project's fact (``Project.sensitive``: protected columns and derived bands). This
check of the pair runs wherever both are used (the resource's ``policy()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlgov_assets.core.governance.policy import Policy, PolicyError

if TYPE_CHECKING:
    from mlgov_assets.core.project.project import Project


def check_against_project(policy: Policy, project: Project) -> Policy:
    """``policy`` itself if every sensitive feature it names (``fairness.sensitive_features``,
    ``fairness.intersections``, ``fairness.mitigation.sensitive_features``) is a sensitive column
    of ``project``.

    Raises :class:`PolicyError` naming the policy file, the key path, the offending name and the
    project's sensitive columns.
    """
    fz = policy.fairness
    if fz is None:
        return policy
    known = project.sensitive
    named = [("fairness.sensitive_features", fz.sensitive_features)]
    named += [(f"fairness.intersections[{i}]", inter) for i, inter in enumerate(fz.intersections)]
    named.append(("fairness.mitigation.sensitive_features", fz.mitigation.sensitive_features))
    problems = [
        f"{key}: {feat!r} is not a sensitive column of project {project.name!r} (sensitive: {known})"
        for key, feats in named
        for feat in feats
        if feat not in known
    ]
    if problems:
        raise PolicyError(f"{policy.path or '<policy>'}: " + "; ".join(problems))
    return policy
