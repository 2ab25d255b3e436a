"""``mlgov init NAME --data FILE --target COL --favourable VALUE --sensitive A,B [--exclude …]``:
profile a team's data, draft a project spec and a starting policy for review, DVC-add the data."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SPECS = "projects"


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def cmd_init(args: argparse.Namespace) -> int:
    import yaml

    from mlgov_assets.core.data.datasets import ensure_tracked
    from mlgov_assets.core.errors import InputError, MlgovError, exit_code_for
    from mlgov_assets.core.integrity import atomic_write_bytes
    from mlgov_assets.core.project.profile import draft_spec
    from mlgov_assets.core.project.project import open_project
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.settings import get_settings

    s = get_settings()
    repo = s.project_dir
    data = (Path.cwd() / args.data).resolve()
    out = Path(args.out).resolve() if args.out else repo / DEFAULT_SPECS
    spec_path, policy_path = out / f"{args.name}.yaml", out / f"{args.name}.policy.yaml"
    try:
        if repo not in data.parents:
            raise MlgovError(f"{data}: the data must be inside the project repository {repo} (copy it under data/)")
        if spec_path.exists() and not args.force:
            raise MlgovError(f"{spec_path} exists: review or remove it, or pass --force")
        rel = data.relative_to(repo).as_posix()
        raw = _read_plain(data)
        draft = draft_spec(
            raw,
            name=args.name,
            data_path=rel,
            target=args.target,
            favourable=args.favourable,
            sensitive=_split(args.sensitive),
            exclude=_split(args.exclude),
            policy_file=policy_path.name,
        )
        out.mkdir(parents=True, exist_ok=True)
        doc = draft.spec.model_dump(mode="json", exclude_defaults=True)
        doc["data"] = draft.spec.data.model_dump(mode="json")  # the holdout split and format, spelled out
        doc["policy"] = policy_path.name
        atomic_write_bytes(spec_path, (_HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)).encode())
        atomic_write_bytes(policy_path, draft.policy_yaml.encode())
        project = open_project(spec_path, repo)  # what we wrote parses back, strictly
        from mlgov_assets.core.data.schemas import validate
        from mlgov_assets.core.project.schemas import raw_schema

        report = validate(read_raw(project, data), raw_schema(project), source=rel)
        if not report.passed:  # a draft must accept the data it was drafted from
            raise InputError(f"the drafted schema refuses its own data: {report.summary()}")
        with contextlib.redirect_stdout(sys.stderr):  # DVC's hints must not reach stdout
            tracked = ensure_tracked(repo, data, site_cache=s.dvc_site_cache)
    except (MlgovError, ValueError, OSError) as exc:
        print(f"mlgov init: {exc}", file=sys.stderr)
        return exit_code_for(exc) if isinstance(exc, MlgovError) else 2
    result = {
        "project": args.name,
        "spec": str(spec_path),
        "policy": str(policy_path),
        "data": rel,
        "data_md5": tracked.md5,
        "warnings": draft.warnings,
        "next": f"MLGOV_PROJECT_SPEC={spec_path} mlgov train",
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for w in draft.warnings:
            print(f"warning: {w}")
        print(f"wrote {spec_path} and {policy_path} (review both: every REVIEW marks a decision for a person)")
        print(f"data: {rel} DVC-tracked, md5 {tracked.md5}")
        print(f"next: {result['next']}")
    return 0


_HEADER = "# Drafted by `mlgov init`: review types, ranges, categories, exclusions and the holdout.\n"


def _read_plain(path: Path) -> pd.DataFrame:
    """The file as strings with a header row (the draft's format), missing as None."""
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    df = df.apply(lambda col: col.str.strip())
    out: pd.DataFrame = df.replace("", None)
    return out


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "init",
        help="draft a project spec and starting policy from a data file (for review), DVC-add the data",
        description="Profile FILE (CSV with a header row), infer column types, ranges and categories, and write "
        "<out>/NAME.yaml (the project spec) and <out>/NAME.policy.yaml (a starting policy: four-fifths on every "
        "protected attribute, mitigation on, floors to review). Warns about id-like and PII-like columns "
        "(excluded from the model), protected groups under the minimum size and an imbalanced target. "
        "Exit 2 on an error (missing column, favourable value absent, data outside the repository).",
    )
    p.add_argument("name", help="project name: lower-case letters, digits and _")
    p.add_argument("--data", required=True, help="the training data file, inside the project repository")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("--favourable", required=True, help="the label value that is the favourable outcome")
    p.add_argument("--sensitive", required=True, help="protected attributes, comma-separated")
    p.add_argument("--exclude", help="columns excluded from the model, comma-separated")
    p.add_argument("--out", help=f"where to write the spec and policy (default <repo>/{DEFAULT_SPECS})")
    p.add_argument("--force", action="store_true", help="overwrite an existing spec")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_init)
