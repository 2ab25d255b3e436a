"""``mlgov status``: the selected project's champion, versions and gates, plus the sections each
subcommand module adds (monitoring, audit, every project of the location, pending approvals)."""

from __future__ import annotations

import argparse
import importlib
import json
from typing import TYPE_CHECKING

from mlgov_assets.core.settings import get_settings

if TYPE_CHECKING:
    from pydantic import JsonValue

    from mlgov_assets.commands.summary import StatusHook


def cmd_status(args: argparse.Namespace) -> int:
    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.governance.promotion import status
    from mlgov_assets.core.models.registry import Registry

    s = get_settings()
    st = status(Registry(s), load_policy(s.policy_path))
    for hook in _status_hooks():
        st = st.with_sections(hook(s))
    if args.json:
        print(json.dumps(st.to_dict(), indent=2, default=str))
        return 0
    print(f"project {s.project_name}: model {st.model_name}  (state: {s.home})")
    print(f"policy {st.policy.path}  sha256 {st.policy.sha256[:16]}")
    ch = st.champion
    if ch is None:
        print("champion: none yet (run `mlgov train` or Materialize all in the UI)")
    else:
        m = ", ".join(f"{k}={v:.4f}" for k, v in sorted(ch.metrics.items()))
        print(f"champion: version {ch.version}  data md5 {ch.train_data_md5}  commit {str(ch.git_commit)[:12]}")
        print(f"  holdout: {m}")
    print(f"history: {st.history}")
    for v in st.versions:
        flag = "champion" if "champion" in v.aliases else ("promotable" if v.promotable else "not promotable")
        flag += ", staging" if "staging" in v.aliases else ""
        print(f"version {v.version} [{flag}] variant={v.variant} data md5 {v.train_data_md5}")
        for name, g in v.gates.items():
            stale = "" if g.current_policy else "  (evaluated under an older policy)"
            print(f"    {g.verdict.upper():6} {name}: {g.summary}{stale}")
    if "approvals" in st.sections:
        from mlgov_assets.commands.approval import print_approvals

        print_approvals(st.sections["approvals"])
    _print_monitoring(st.sections.get("monitoring"))
    _print_audit(st.sections.get("audit"))
    if st.sections.get("projects"):
        from mlgov_assets.commands.projects import print_projects

        print("projects (* = this one; --project NAME selects another):")
        print_projects(st.sections.get("projects"))
    notices = st.sections.get("notices")
    for notice in notices if isinstance(notices, list) else []:
        print(f"note: {notice}")
    return 0


def _short(obj: JsonValue) -> str:
    if not isinstance(obj, dict):
        return str(obj)
    keys = ("batch_id", "verdict", "breach", "drifted_columns", "drifted_share", "at", "run_key", "status")
    return ", ".join(f"{k}={obj[k]}" for k in keys if obj.get(k) not in (None, "", []))


def _print_monitoring(mon: JsonValue) -> None:
    if not isinstance(mon, dict) or not mon:
        return
    print(
        f"monitoring: {mon.get('batches', 0)} batches ({mon.get('quarantined', 0)} quarantined), "
        f"{mon.get('alerts', 0)} alerts; landing folder {mon.get('landing_dir')}"
    )
    for label, key in (
        ("latest drift", "latest_drift"),
        ("latest performance", "latest_performance"),
        ("last retraining", "last_retraining"),
    ):
        print(f"  {label}: {_short(mon[key]) if mon.get(key) else 'none yet'}")


def _print_audit(aud: JsonValue) -> None:
    if not isinstance(aud, dict) or not aud:
        return
    log = aud.get("decision_log")
    log = log if isinstance(log, dict) else {}
    state = "verified" if log.get("ok") else f"BROKEN at record {log.get('first_bad_index')}: {log.get('problem')}"
    certificates, cards = aud.get("certificates"), aud.get("model_cards")
    print(
        f"audit: decision log {state} ({log.get('count')} records); "
        f"{len(certificates) if isinstance(certificates, dict | list) else 0} reproducibility certificate(s); "
        f"{len(cards) if isinstance(cards, dict | list) else 0} model card(s) — details: mlgov audit champion"
    )
    ol = aud.get("openlineage")
    if isinstance(ol, dict):
        where = f"{ol.get('file')}" + (f" and {ol.get('url')}" if ol.get("url") else "")
        print(
            f"openlineage: {'on' if ol.get('enabled') else 'off'}, {ol.get('runs_emitted')} run(s) emitted to {where}"
        )


def _status_hooks() -> list[StatusHook]:
    """The ``status_hook`` of each subcommand module that has one, in EXTRA_COMMANDS order."""
    from mlgov_assets.cli import EXTRA_COMMANDS

    hooks = []
    for mod_name in EXTRA_COMMANDS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError:
            continue
        if hasattr(mod, "status_hook"):
            hooks.append(mod.status_hook)
    return hooks
