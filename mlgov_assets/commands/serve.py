"""``mlgov serve``: online scoring over HTTP (FastAPI + uvicorn, imported only by this command)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.serving.options import ServeOptions

if TYPE_CHECKING:
    from mlgov_assets.core.serving.service import ScoringService

DEFAULT_PORT = 8765
_DEFAULTS = ServeOptions()


def build_service(opts: ServeOptions) -> ScoringService:
    """The selected project's service: settings, spec, policy and registry as every command finds them."""
    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import open_project
    from mlgov_assets.core.serving.service import ScoringService
    from mlgov_assets.core.settings import get_settings

    # one request = one thread, one native thread: each scoring thread sets its own limit
    # (service.one_openmp_thread: OpenMP's is per thread; this main thread scores nothing)
    s = get_settings().ensure()
    project = open_project(s.project_spec, s.project_dir)
    return ScoringService(s, project, load_policy(s.policy_path), opts, Registry(s))


def options_from(args: argparse.Namespace) -> ServeOptions:
    fields: dict[str, Any] = {
        "roll_rows": args.roll_rows,
        "roll_seconds": args.roll_seconds,
        "fsync": args.fsync,
        "poll_seconds": args.poll_seconds,
        "max_rows": args.max_rows,
        "max_body_bytes": args.max_body_bytes,
        "shadow": not args.no_shadow,
    }
    return ServeOptions(**fields)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mlgov_assets.serve.app import create_app

    service = build_service(options_from(args))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"mlgov serve: listening on {args.host}: reachable beyond this machine, without authentication",
            file=sys.stderr,
        )
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="score requests over HTTP with the verified champion (shadow challenger, prediction log, landing batches)",
        description="An HTTP scoring service (POST /predict, /health, /ready, /metrics, /docs) for the selected "
        "project (--project NAME). The champion is loaded only after its artifact hashes verify, and swapped without "
        "a restart when the alias moves; the shadow challenger is scored off the request path. Every request is "
        "logged under the project's state directory and rolled into landing batches the monitoring loop ingests.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--roll-rows", type=int, default=_DEFAULTS.roll_rows, help="rows per landing batch")
    p.add_argument(
        "--roll-seconds",
        type=float,
        default=_DEFAULTS.roll_seconds,
        help="roll sooner once this many seconds passed (and the policy's monitoring.min_batch_rows rows wait)",
    )
    p.add_argument(
        "--fsync", choices=["always", "interval", "never"], default=_DEFAULTS.fsync, help="prediction log fsync policy"
    )
    p.add_argument(
        "--poll-seconds", type=float, default=_DEFAULTS.poll_seconds, help="how often the champion alias is checked"
    )
    p.add_argument("--max-rows", type=int, default=_DEFAULTS.max_rows, help="rows per request")
    p.add_argument("--max-body-bytes", type=int, default=_DEFAULTS.max_body_bytes, help="request body size cap")
    p.add_argument("--no-shadow", action="store_true", help="do not score the shadow challenger")
    p.set_defaults(func=cmd_serve)
