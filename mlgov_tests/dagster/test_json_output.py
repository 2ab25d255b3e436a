"""``--json`` prints exactly one JSON document on stdout, in every outcome of every command.

The commands are enumerated from the argparse parser, so a new command that accepts ``--json``
fails :func:`test_every_json_command_has_cases` until its outcomes are listed here. Each outcome
that is cheap to reach is run through ``mlgov_assets.cli.main`` in-process and its stdout (file
descriptor level: ``capfd``) must parse as one JSON document, with the expected exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys

import pytest

from mlgov_assets.cli import build_parser, main

#: command -> outcome -> (argv, exit code). "ok" 0, "refusal" 1, "error" 2; "<outcome>: <form>" for a
#: second form of a command (``audit export-lineage``). Cases that need a trained champion are in
#: WITH_MODEL; every other case runs on a fresh state directory.
NO_MODEL: dict[str, dict[str, tuple[list[str], int]]] = {
    "train": {"error": (["train", "--set", "not-a-pair"], 2)},
    "status": {"ok": (["status"], 0)},
    "promote": {"refusal": (["promote", "--version", "99"], 1), "error": (["promote"], 2)},
    "rollback": {"refusal": (["rollback", "--reason", "nothing to roll back"], 1)},
    "monitor": {"ok": (["monitor", "--once"], 0), "error": (["monitor"], 2)},
    "simulate": {
        "ok": (["simulate", "--kind", "none", "--rows", "40", "--seed", "1"], 0),
        "error": (["simulate", "--kind", "none", "--rows", "40", "--batch-id", "../escape"], 2),
    },
    "audit": {
        "ok": (["audit", "verify"], 0),
        "error": (["audit", "champion"], 2),
        "error: export-lineage": (["audit", "export-lineage", "champion"], 2),
    },
    "reproduce": {"error": (["reproduce", "99"], 2)},
    "init": {
        "error": (["init", "x", "--data", "/etc/hostname", "--target", "a", "--favourable", "b", "--sensitive", "c"], 2)
    },
    "projects": {"ok": (["projects"], 0)},
    # approval: nothing is pending on a fresh state (and automatic mode never stages): a refusal
    "approve": {"refusal": (["approve", "--version", "99", "--reason", "looks fine"], 1), "error": (["approve"], 2)},
    "reject": {"refusal": (["reject", "--version", "99", "--reason", "no"], 1), "error": (["reject"], 2)},
    "data add": {"ok": (["data", "add", "data/adult.test"], 0), "error": (["data", "add", "data/no-such.csv"], 2)},
}
WITH_MODEL: dict[str, dict[str, tuple[list[str], int]]] = {
    "train": {"ok": (["train", "--set", "max_iter=40", "--set", "learning_rate=0.2"], 0)},
    "status": {"ok": (["status"], 0)},
    "reproduce": {"ok": (["reproduce", "champion"], 0)},
    "promote": {"ok": (["promote", "--version", "1", "--reason", "again"], 0)},
    "audit": {
        "ok": (["audit", "champion"], 0),
        "ok: export-lineage": (["audit", "export-lineage", "champion"], 0),
        "refusal": (["audit", "verify"], 1),  # last: tampers the log
    },
}

#: Cases run with a malformed policy file.
BROKEN_POLICY: dict[str, dict[str, tuple[list[str], int]]] = {
    "status": {"error": (["status"], 2)},
    "train": {"error": (["train", "--set", "max_iter=20"], 2)},
}


def json_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every (sub)command of ``parser`` that accepts ``--json``, space-joined."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= json_commands(sub, (*prefix, name))
        elif "--json" in action.option_strings:
            found.add(" ".join(prefix))
    return found


def one_document(capfd) -> object:
    """stdout (file descriptor 1, children and C writes included) is exactly one JSON document."""
    out = capfd.readouterr().out
    doc = json.loads(out)  # raises on anything before or after the document
    assert isinstance(doc, dict | list)
    return doc


def run_json(capfd, argv: list[str], expected: int) -> object:
    capfd.readouterr()
    code = main([*argv, "--json"])
    doc = one_document(capfd)
    assert code == expected, (argv, code, doc)
    if expected and isinstance(doc, dict):
        assert doc.get("ok", False) is False and doc.get("success", False) is False, doc
        if "exit_code" in doc:  # the error document of a command that ended without its own
            assert doc["error"] and doc["kind"] == ("refusal" if expected == 1 else "error")
    return doc


def test_every_json_command_has_cases():
    commands = json_commands(build_parser())
    assert commands == set(NO_MODEL), "a command accepts --json: list its outcomes in NO_MODEL/WITH_MODEL"
    assert set(WITH_MODEL) <= commands
    assert set(BROKEN_POLICY) <= commands
    outcomes = {(c, o) for t in (NO_MODEL, WITH_MODEL, BROKEN_POLICY) for c, cases in t.items() for o in cases}
    assert {o.split(":")[0] for _, o in outcomes} == {"ok", "refusal", "error"}
    # every command also has its error case: an unknown --project (in the no-model test)


def test_every_command_prints_one_document_without_a_model(env, capfd, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    for command, cases in NO_MODEL.items():
        for outcome, (argv, code) in cases.items():
            doc = run_json(capfd, argv, code)
            assert not outcome.startswith("ok") or not (isinstance(doc, dict) and doc.get("ok") is False), (
                command,
                doc,
            )
    for command in sorted(NO_MODEL):  # an unknown --project is an error document for every command
        argv = NO_MODEL[command].get("ok", NO_MODEL[command].get("refusal", NO_MODEL[command].get("error")))[0]
        doc = run_json(capfd, [*argv, "--project", "no-such-project"], 2)
        assert "no-such-project" in doc["error"]


def test_a_broken_policy_is_an_error_document(env, capfd, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    env.write_policy("metric_floors: [unclosed\n")
    for cases in BROKEN_POLICY.values():
        for argv, code in cases.values():
            run_json(capfd, argv, code)


def test_every_command_prints_one_document_with_a_model(env, capfd, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    for command, cases in WITH_MODEL.items():
        for outcome, (argv, code) in cases.items():
            if outcome == "refusal" and command == "audit":  # a tampered decision log
                log = env.settings().decision_log
                lines = log.read_bytes().splitlines(keepends=True)
                log.write_bytes(lines[0].replace(b'"', b"'", 1) + b"".join(lines[1:]))
            run_json(capfd, argv, code)
    env.use_policy(drop=("fairness", "explanations"), metric_floors={"roc_auc": {"min": 0.999}})
    doc = run_json(capfd, ["train", "--set", "max_iter=20"], 1)  # a gate refuses: the run's own summary
    assert isinstance(doc, dict) and doc["refused_by"]


def test_writes_below_python_and_from_child_processes_go_to_stderr(capfd, monkeypatch):
    """Whatever a library writes (fd 1 directly, a child process, print, a logging handler on stdout)
    reaches stderr; stdout holds the command's document alone."""
    import mlgov_assets.cli as cli

    def noisy(args):
        os.write(1, b"C-level write to fd 1\n")
        subprocess.run([sys.executable, "-c", "print('child process output')"], check=True)
        print("To track the changes with git, run:")
        handler = logging.StreamHandler(sys.stdout)
        logging.getLogger("noisy").addHandler(handler)
        logging.getLogger("noisy").warning("a log line on stdout")
        logging.getLogger("noisy").removeHandler(handler)
        print(json.dumps({"the": "document"}, indent=2))
        print("a trailing hint")
        return 0

    monkeypatch.setattr(cli, "cmd_status", noisy)
    capfd.readouterr()
    assert main(["status", "--json"]) == 0
    captured = capfd.readouterr()
    assert json.loads(captured.out) == {"the": "document"}
    for noise in ("C-level write", "child process output", "To track the changes", "a log line", "trailing hint"):
        assert noise in captured.err and noise not in captured.out


@pytest.mark.parametrize(
    ("exc", "code", "kind"),
    [(OSError(28, "No space left on device", "/state/x"), 2, "error"), (KeyError("x"), 2, "error")],
)
def test_an_unexpected_exception_is_an_error_document(capfd, monkeypatch, exc, code, kind):
    import mlgov_assets.cli as cli

    def fail(args):
        print("half a report")
        raise exc

    monkeypatch.setattr(cli, "cmd_status", fail)
    capfd.readouterr()
    assert main(["status", "--json"]) == code
    doc = one_document(capfd)
    assert doc["ok"] is False and doc["kind"] == kind and doc["exit_code"] == code
