"""``mlgov prod up|down|status``: the production profile's stack on this machine (``deploy/stack``)."""

from __future__ import annotations

import argparse
import os
import sys

from mlgov_assets.core.settings import PROFILE_ENV, get_settings


def cmd_prod(args: argparse.Namespace) -> int:
    from mlgov_assets.deploy import stack

    os.environ[PROFILE_ENV] = "prod"  # the command is the profile: no second setting to forget
    settings = get_settings()

    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.action == "up":
        for st in stack.up(settings, echo=echo):
            print(st.line())
        return 0
    if args.action == "down":
        stack.down(settings, echo=echo)
        return 0
    states = stack.status(settings)
    for st in states:
        print(st.line())
    return 0 if all(st.healthy for st in states) else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "prod",
        help="start/stop/show the production-profile stack on this machine (MLflow, Dagster, workers)",
        description="The production profile (MLGOV_PROFILE=prod) on loopback: `up` creates the PostgreSQL "
        "databases if missing and starts the MLflow tracking server, the code server, two Celery workers and "
        "the Dagster webserver + daemon (pids and logs in $MLGOV_HOME/prod/), waiting until each is healthy; "
        "`down` stops them; `status` exits 1 unless every process is healthy. PostgreSQL and the Celery broker "
        "(RabbitMQ) must already run.",
    )
    p.add_argument("action", choices=("up", "down", "status"))
    p.set_defaults(func=cmd_prod)
