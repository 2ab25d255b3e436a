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

    from mlgov_assets.core.project.profile import Draft

DEFAULT_SPECS = "projects"


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def cmd_init(args: argparse.Namespace) -> int:
    from mlgov_assets.core.errors import MlgovError, exit_code_for
    from mlgov_assets.core.settings import get_settings

    s = get_settings()
    out = Path(args.out).resolve() if args.out else s.project_dir / DEFAULT_SPECS
    spec_path, policy_path = out / f"{args.name}.yaml", out / f"{args.name}.policy.yaml"
    try:
        data, rel = _data_file(args.data, s.project_dir)
        if spec_path.exists() and not args.force:
            raise MlgovError(f"{spec_path} exists: review or remove it, or pass --force")
        draft = _draft(args, data, rel, policy_path.name)
        _write_checked(draft, spec_path, policy_path, s.project_dir, data)
        md5 = _track(s.project_dir, data, s.dvc_site_cache)
    except (MlgovError, ValueError, OSError) as exc:
        print(f"mlgov init: {exc}", file=sys.stderr)
        return exit_code_for(exc) if isinstance(exc, MlgovError) else 2
    result = {
        "project": args.name,
        "spec": str(spec_path),
        "policy": str(policy_path),
        "data": rel,
        "data_md5": md5,
        "warnings": draft.warnings,
        "next": f"mlgov train --project {args.name}"
        if out == s.project_dir / DEFAULT_SPECS
        else f"mlgov train --project {spec_path}",
    }
    _report(result, args.json)
    return 0


def _data_file(given: str, repo: Path) -> tuple[Path, str]:
    from mlgov_assets.core.errors import MlgovError

    data = (Path.cwd() / given).resolve()
    if repo not in data.parents:
        raise MlgovError(f"{data}: the data must be inside the project repository {repo} (copy it under data/)")
    return data, data.relative_to(repo).as_posix()


def _draft(args: argparse.Namespace, data: Path, rel: str, policy_name: str) -> Draft:
    from mlgov_assets.core.project.profile import draft_spec

    return draft_spec(
        _read_plain(data),
        name=args.name,
        data_path=rel,
        target=args.target,
        favourable=args.favourable,
        sensitive=_split(args.sensitive),
        exclude=_split(args.exclude),
        policy_file=policy_name,
    )


def _write_checked(draft: Draft, spec_path: Path, policy_path: Path, repo: Path, data: Path) -> None:
    """Write both files, then prove the spec parses back and its schema accepts its own data; on a
    refusal nothing is left behind."""
    import yaml

    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.errors import InputError
    from mlgov_assets.core.integrity import atomic_write_bytes
    from mlgov_assets.core.project.project import open_project
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.project.schemas import raw_schema

    doc = draft.spec.model_dump(mode="json", exclude_defaults=True)
    doc["data"] = draft.spec.data.model_dump(mode="json")  # the holdout split and format, spelled out
    doc["policy"] = policy_path.name
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(spec_path, (_HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)).encode())
    atomic_write_bytes(policy_path, draft.policy_yaml.encode())
    try:
        project = open_project(spec_path, repo)
        report = validate(read_raw(project, data), raw_schema(project), source=str(data.relative_to(repo)))
        if not report.passed:
            raise InputError(f"the drafted schema refuses its own data: {report.summary()}")
    except Exception:
        spec_path.unlink(missing_ok=True)
        policy_path.unlink(missing_ok=True)
        raise


def _track(repo: Path, data: Path, site_cache: Path) -> str:
    from mlgov_assets.core.data.datasets import ensure_tracked

    with contextlib.redirect_stdout(sys.stderr):  # DVC's hints must not reach stdout
        return ensure_tracked(repo, data, site_cache=site_cache, accept_change=True).md5  # the user adds it


def _report(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for w in result["warnings"]:  # type: ignore[attr-defined]
        print(f"warning: {w}")
    print(f"wrote {result['spec']} and {result['policy']} (review both: every REVIEW marks a decision for a person)")
    print(f"data: {result['data']} DVC-tracked, md5 {result['data_md5']}")
    print(f"next: {result['next']}")


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
