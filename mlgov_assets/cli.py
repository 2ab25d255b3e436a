"""``mlgov``: the governed path for people and CI/CD pipelines.

Every command runs the same Dagster jobs and core functions the UI uses, against the same
persistent instance under ``$MLGOV_HOME`` (so CLI runs appear in the UI's run history).
Exit codes: 0 success, 1 a governance gate refused (or verification failed), 2 usage/other error.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mlgov_assets.core.errors import MlgovError, Refusal, exit_code_for
from mlgov_assets.core.settings import get_settings

if TYPE_CHECKING:
    from dagster import AssetCheckEvaluation, DagsterEvent
    from dagster._core.execution.execution_result import ExecutionResult

    from mlgov_assets.commands.json_mode import JsonStdout
    from mlgov_assets.commands.summary import AcceptedData, CheckVerdict, RunSummary, StepFailure

#: Subcommand modules owned by later stages (monitoring, audit); each exposes register(subparsers).
EXTRA_COMMANDS = [
    "mlgov_assets.commands.monitoring",
    "mlgov_assets.commands.audit",
    "mlgov_assets.commands.init",
    "mlgov_assets.commands.projects",
    "mlgov_assets.commands.approval",
    "mlgov_assets.commands.serve",
    "mlgov_assets.commands.prod",
]

GATE_REFUSED = Refusal.exit_code  # 1: a governance gate (or verification) said no
ERROR = MlgovError.exit_code  # 2: usage, configuration or any other error


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MlgovError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def run_job(job_name: str, run_config: dict[str, Any], tags: dict[str, str] | None = None) -> ExecutionResult:
    """Execute the selected project's job ``job_name`` against the persistent instance: in this process
    (embedded profile), or with its steps on the Celery workers (production profile)."""
    from .commands.recovery import fail_dead_runs, process_tags
    from .defs.lineage_events import emit_run
    from .defs.scope import scoped_name
    from .distributed.cli_runs import execute
    from .instance import get_instance

    s = get_settings()
    instance = get_instance(s)
    fail_dead_runs(instance)  # runs a killed CLI process left STARTED
    tags = {**(tags or {}), **process_tags()}
    result = execute(scoped_name(s.project_name, job_name), run_config, instance, tags, s.project_dir)
    emit_run(instance, result.run_id, s)  # OpenLineage events of the run (never raises; the sensor dedups)
    return result


def _step_failure(ev: DagsterEvent, refusing_steps: set[str | None]) -> StepFailure:
    """One failed step: refused (a blocking check failed in it, or the step raised a Failure
    marked ``mlgov/refused``) or broken, and the user's error message."""
    from mlgov_assets.commands.summary import StepFailure

    data = ev.step_failure_data
    err = data.error
    raised_refusal = False
    while err is not None and err.cause is not None:  # the user's error, not Dagster's wrapper
        err = err.cause
        raised_refusal = raised_refusal or err.cls_name in _refusal_class_names()
    msg = err.message.strip() if err else ""
    user = data.user_failure_data
    refused = (
        ev.step_key in refusing_steps
        or raised_refusal  # the step raised a Refusal (e.g. IntegrityError: a verification failed)
        or bool(user and (user.metadata or {}).get("mlgov/refused"))
    )
    if user and user.description:
        msg = user.description
    return StepFailure(step=ev.step_key, refused=refused, error=msg.splitlines()[0][:500] if msg else "")


def _refusal_class_names() -> set[str]:
    """Names of every ``Refusal`` subclass loaded (a step's error arrives as Dagster's serialized
    error info, which keeps the class name, not the class)."""
    names, todo = set(), [Refusal]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _check_verdict(c: AssetCheckEvaluation) -> CheckVerdict:
    from mlgov_assets.commands.summary import CheckVerdict

    return CheckVerdict(
        check=c.check_name,
        asset=c.asset_key.to_user_string(),
        passed=c.passed,
        severity=c.severity.value,
        blocking=bool(c.blocking),
        description=c.description,
    )


def summarize_run(result: ExecutionResult) -> RunSummary:
    """Which gates passed or failed, which steps failed and why: the CLI's verdict."""
    from dagster import DagsterEventType

    from mlgov_assets.commands.summary import RunSummary
    from mlgov_assets.core.governance.promotion import ChampionOutcome

    checks: list[CheckVerdict] = []
    refusing_steps: set[str | None] = set()
    for ev in result.all_events:
        if ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            checks.append(_check_verdict(ev.asset_check_evaluation_data))
            if checks[-1].refuses:
                refusing_steps.add(ev.step_key)
    failures = [_step_failure(ev, refusing_steps) for ev in result.all_events if ev.is_step_failure]
    champion = None
    with contextlib.suppress(Exception):  # the job has no champion step, or it did not run
        champion = result.output_for_node("champion")
    return RunSummary(
        run_id=result.run_id,
        success=result.success,
        checks=checks,
        failed_steps=failures,
        refused_by=[c for c in checks if c.refuses],
        champion=ChampionOutcome.model_validate(champion) if champion is not None else None,
    )


def _print_summary(summary: RunSummary) -> None:
    print(f"dagster run {summary.run_id}")
    for c in summary.checks:
        mark = (
            "PASS"
            if c.passed
            else ("WARN" if c.severity != "ERROR" else "FAIL" if c.blocking else "FAIL, shown, not blocking")
        )
        print(f"  [{mark}] {c.check} ({c.asset}): {c.description}")
    for f in summary.failed_steps:
        print(f"  step {f.step} failed: {f.error}")
    ch = summary.champion
    if ch:
        verb = ("rolled back" if ch.kind == "rollback" else "promoted") if ch.promoted else "unchanged"
        print(f"champion: version {ch.champion} ({verb}; {ch.reason})")
        if ch.staged is not None:
            print(f"staged: version {ch.staged} awaits approval (mlgov approve --version {ch.staged} --reason TEXT)")
    elif summary.refused_by:
        names = ", ".join(c.check for c in summary.refused_by)
        print(f"REFUSED by {names}: the champion is unchanged.")


def _finish(summary: RunSummary, as_json: bool) -> int:
    """Print the summary (``--json``: its JSON form) and return the exit code it means."""
    if as_json:
        print(json.dumps(summary.model_dump(mode="json"), indent=2, default=str))
    else:
        _print_summary(summary)
    if summary.success:
        return 0
    # 1 only when governance said no (a blocking gate, a refused promotion, refused data); a
    # breakage (missing file, bad policy, store error) is 2, so CI can tell the two apart
    broken = [f for f in summary.failed_steps if not f.refused]
    return ERROR if broken or not (summary.refused_by or summary.failed_steps) else GATE_REFUSED


def cmd_train(args: argparse.Namespace) -> int:
    if args.accept_data_change:
        from mlgov_assets.core.project.project import open_project

        s = get_settings()
        project = open_project(s.project_spec, s.project_dir)
        files = [args.dataset or project.train_file, project.holdout_file]
        _accept_data([f for f in dict.fromkeys(files) if f], to=sys.stderr)
    cfg: dict[str, Any] = {"ops": {}}
    params = _parse_sets(args.set)
    if params:
        cfg["ops"]["challenger_model"] = {"config": params}
    if args.dataset:
        cfg["ops"]["training_data"] = {"config": {"path": args.dataset}}
    result = run_job("governed_training", cfg, tags={"mlgov/trigger": "cli"})
    return _finish(summarize_run(result), args.json)


def _champion_action(action: str, args: argparse.Namespace, **extra: Any) -> int:
    config = {"action": action, "reason": args.reason or "", "actor": f"{getpass.getuser()} (mlgov cli)", **extra}
    result = run_job("champion_decision", {"ops": {"champion": {"config": config}}}, tags={"mlgov/trigger": "cli"})
    return _finish(summarize_run(result), args.json)


def cmd_promote(args: argparse.Namespace) -> int:
    if args.override is not None:
        if not args.override.strip():
            print("--override needs a written justification", file=sys.stderr)
            return ERROR
        return _override(args)
    return _champion_action("promote_version", args, version=args.version)


def _override(args: argparse.Namespace) -> int:
    """Promote despite failed gates: only here, with a written justification, recorded as an
    override in the decision log and on the version, and reported to Dagster as a materialization
    of `champion` so the UI's history shows it. (Not a Launchpad field of the champion asset.)"""
    from dagster import AssetMaterialization

    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.governance.promotion import promote
    from mlgov_assets.core.models.registry import Registry

    from .instance import get_instance

    s = get_settings()
    registry, policy = Registry(s), load_policy(s.policy_path)
    actor = f"{getpass.getuser()} (mlgov promote --override)"
    try:
        result = promote(
            registry,
            policy,
            args.version,
            actor=actor,
            reason=args.reason or "override",
            override_justification=args.override,
        ).to_dict()
    except Refusal as exc:  # PromotionRefused, ChampionChanged
        print(f"REFUSED: {exc}")
        return exit_code_for(exc)
    get_instance(s).report_runless_asset_event(
        AssetMaterialization(
            "champion",
            description=f"{result['kind']} by {actor}: {result['reason']}",
            metadata={
                "champion_version": result["champion"],
                "previous_version": str(result["previous"]),
                "action": result["kind"],
                "reason": result["reason"],
                "policy_sha256": policy.sha256,
            },
        )
    )
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"champion: version {result['champion']} ({result['kind']}; {result['reason']})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        print("rollback needs --reason", file=sys.stderr)
        return ERROR
    return _champion_action("rollback", args)


def cmd_ui(args: argparse.Namespace) -> int:
    """`dagster dev` (webserver + daemon) on the persistent instance, plus MLflow's UI on the same
    store so the links in asset metadata open; both bound to 127.0.0.1 by default. Ctrl-C or
    SIGTERM stops both."""
    import signal
    import subprocess

    from .instance import prepare_environment
    from .upgrade import state_notices

    s = get_settings()
    prepare_environment(s)
    for notice in state_notices(s):
        print(f"mlgov: note: {notice}", file=sys.stderr)
    cwd = s.project_dir if (s.project_dir / "workspace.yaml").exists() else Path.cwd()
    bindir = Path(sys.executable).parent
    children: list[subprocess.Popen[bytes]] = []
    if not args.no_mlflow and not s.is_prod:  # prod: the tracking server is the MLflow UI
        children.append(
            subprocess.Popen(
                [
                    str(bindir / "mlflow"),
                    "ui",
                    "--host",
                    args.host,
                    "--port",
                    str(args.mlflow_port),
                    "--backend-store-uri",
                    s.tracking_uri,
                ],
                cwd=cwd,
            )
        )
        print(f"mlgov: MLflow UI on http://{args.host}:{args.mlflow_port}", flush=True)
    print(f"mlgov: state in {s.home}; Dagster UI on http://{args.host}:{args.port}", flush=True)
    children.append(
        subprocess.Popen(
            [str(bindir / "dagster"), "dev", "-h", args.host, "-p", str(args.port), "-w", "workspace.yaml"], cwd=cwd
        )
    )

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, lambda *a: stop())
    try:
        return children[-1].wait()
    except KeyboardInterrupt:
        return 130
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


def cmd_data_pull(args: argparse.Namespace) -> int:
    from mlgov_assets.core.data.datasets import pull

    s = get_settings()
    pulled = pull(s.project_dir, site_cache=s.dvc_site_cache, force=args.force)
    print("data: " + (f"pulled {', '.join(pulled)}" if pulled else "all DVC-tracked files present and matching"))
    return 0


def _accept_data(paths: list[str], *, to: TextIO) -> list[AcceptedData]:
    """DVC-track ``paths`` at their current bytes, rewriting a ``.dvc`` file whose md5 changed
    (the user said the change is meant); one line per file on ``to``."""
    from mlgov_assets.commands.summary import AcceptedData
    from mlgov_assets.core.data.datasets import dataset_location, ensure_dataset, recorded_md5

    s = get_settings()
    out = []
    for path in paths:
        _, file = dataset_location(s.project_dir, path, s.generated_dir)
        before = recorded_md5(file) if file.is_file() else None
        tracked = ensure_dataset(s, path, accept_change=True)
        changed = before is not None and before != tracked.md5
        rel = tracked.relative_to(s.project_dir)
        out.append(AcceptedData(path=rel, md5=tracked.md5, previous_md5=before, dvc_file_rewritten=changed))
        state = (
            f"changed bytes accepted (md5 {before} -> {tracked.md5}); {rel}.dvc rewritten: commit it"
            if changed
            else ("now DVC-tracked" if before is None else "unchanged") + f", md5 {tracked.md5}"
        )
        print(f"data: {rel}: {state}", file=to)
    return out


def cmd_data_add(args: argparse.Namespace) -> int:
    added = _accept_data(args.paths, to=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps({"datasets": [a.model_dump() for a in added]}, indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``mlgov status`` (in ``commands/status.py``)."""
    from mlgov_assets.commands.status import cmd_status as status

    return status(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlgov",
        description=__doc__.split("\n")[0],
        epilog="State lives in $MLGOV_HOME (default <project>/.mlgov). Every command takes --project NAME "
        "(a project of `mlgov projects`, or a spec file); default $MLGOV_PROJECT_SPEC, else the Adult demo.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add_model_commands(sub)
    _add_ops_commands(sub)
    for mod_name in EXTRA_COMMANDS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError:
            continue
        mod.register(sub)
    return p


def _add_model_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """train, status, promote, rollback."""
    t = sub.add_parser(
        "train",
        help="run the governed training path headless (as 'Materialize all')",
        description="Run data -> gates -> features -> challenger -> gates -> champion. "
        "Exit 1 when a gate refuses the challenger (printing which and why).",
    )
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="hyperparameter, e.g. --set max_iter=100")
    t.add_argument("--dataset", help="training dataset inside the project (default: the project spec's data.train)")
    t.add_argument(
        "--accept-data-change",
        action="store_true",
        help="a DVC-tracked data file whose bytes changed is meant to: re-record it (rewrites its .dvc file)",
    )
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "status",
        help="champion, its metrics and data md5, every gate's verdict",
        description="Show the champion and every registered version with its gate verdicts.",
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    pr = sub.add_parser(
        "promote",
        help="make version N champion (only if it passed every gate of the current policy)",
        description="Promote a registered version through the champion asset. Refused unless it "
        "passed every gate of the current policy, unless --override is given with a "
        "written justification (recorded as an override in the decision log).",
    )
    pr.add_argument("--version", type=int, required=True)
    pr.add_argument("--reason", default="", help="why (recorded)")
    pr.add_argument("--override", metavar="JUSTIFICATION", help="promote despite failed gates; the text is recorded")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_promote)

    rb = sub.add_parser(
        "rollback",
        help="champion back to the previous one",
        description="Move the champion alias back to the previous champion; the reason is recorded.",
    )
    rb.add_argument("--reason", required=True)
    rb.add_argument("--json", action="store_true")
    rb.set_defaults(func=cmd_rollback)


def _add_ops_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """ui, data pull."""
    ui = sub.add_parser(
        "ui",
        help="start the Dagster UI + daemon (and MLflow's UI) on the persistent instance",
        description="dagster dev with DAGSTER_HOME=$MLGOV_HOME/dagster and mlflow ui on the same store, "
        "both bound to 127.0.0.1.",
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument(
        "--mlflow-port",
        type=int,
        default=get_settings().mlflow_ui_port,
        help="default: the port of MLGOV_MLFLOW_UI_URL",
    )
    ui.add_argument("--no-mlflow", action="store_true", help="do not start MLflow's UI beside Dagster's")
    ui.set_defaults(func=cmd_ui)

    d = sub.add_parser("data", help="data housekeeping", description="DVC-tracked data housekeeping.")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dp = dsub.add_parser(
        "pull",
        help="restore DVC-tracked files from the cache or the shipped store",
        description="Restore data/*.dvc files' data from the DVC cache or default remote.",
    )
    dp.add_argument("--force", action="store_true", help="overwrite files whose bytes changed with the recorded ones")
    dp.set_defaults(func=cmd_data_pull)
    da = dsub.add_parser(
        "add",
        help="DVC-track files at their current bytes (re-records a tracked file that changed)",
        description="DVC-add data files inside the project: a new file is tracked, a tracked file whose bytes "
        "changed has its .dvc file rewritten (commit it). `mlgov train` refuses changed tracked data until then.",
    )
    da.add_argument("paths", nargs="+", metavar="PATH", help="data file(s), relative to the project")
    da.add_argument("--json", action="store_true")
    da.set_defaults(func=cmd_data_add)


def main(argv: list[str] | None = None) -> int:
    from mlgov_assets.core.settings import apply_quiet_env

    apply_quiet_env()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--json" in argv:  # one JSON document on stdout, whatever happens (commands/json_mode.py)
        from mlgov_assets.commands.json_mode import JsonStdout

        with JsonStdout() as out:
            code = _main(argv, out)
            return out.finish(code)
    return _main(argv)


def _main(argv: list[str], out: JsonStdout | None = None) -> int:
    from mlgov_assets.commands.projects import PROJECT_ENV, select_project

    before = os.environ.get(PROJECT_ENV)
    try:
        select_project(argv)
        return _run(argv, out)
    except MlgovError as exc:  # --project named no project
        return _report_error(f"mlgov: {exc}", exc, out)
    except SystemExit as exc:  # argparse: a usage error (its message is on stderr already)
        if out is None:
            raise
        code = exc.code if isinstance(exc.code, int) else ERROR
        if isinstance(exc.code, str):
            out.error = exc.code
        return code
    finally:  # --project selects for this command only (main() also runs in-process, e.g. in tests)
        if before is None:
            os.environ.pop(PROJECT_ENV, None)
        else:
            os.environ[PROJECT_ENV] = before


def _report_error(message: str, exc: BaseException, out: JsonStdout | None) -> int:
    """An error the command did not handle: one sentence on stderr (and in the ``--json`` document)."""
    print(message, file=sys.stderr)
    if out is not None:
        out.error = message
    return exit_code_for(exc)


def _run(argv: list[str], out: JsonStdout | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("MLGOV_DEBUG"):
            raise
        from mlgov_assets.commands.json_mode import describe_error

        return _report_error(f"mlgov {args.command}: {describe_error(exc)}", exc, out)


if __name__ == "__main__":
    sys.exit(main())
