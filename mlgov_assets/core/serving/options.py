"""What ``mlgov serve`` can be told: one pydantic model, the CLI's defaults come from here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

FsyncPolicy = Literal["always", "interval", "never"]


class ServeOptions(BaseModel):
    """Limits and cadences of the scoring service (defaults sized for one small host)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a request body larger than this is refused (413) before it is parsed
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    #: rows in one request (422 above)
    max_rows: Annotated[int, Field(ge=1)] = 1_000
    #: ``reasons`` asked for per row (422 above)
    max_reasons: Annotated[int, Field(ge=1)] = 10
    #: seconds between two looks at the champion alias (and the shadow)
    poll_seconds: Annotated[float, Field(gt=0)] = 2.0
    #: prediction log: ``always`` fsyncs every line, ``interval`` at most every ``fsync_seconds``
    fsync: FsyncPolicy = "interval"
    fsync_seconds: Annotated[float, Field(gt=0)] = 1.0
    #: the log file is rotated past this size; ``log_keep`` rotated files are kept
    log_max_bytes: Annotated[int, Field(ge=4096)] = 64 * 1024 * 1024
    log_keep: Annotated[int, Field(ge=1)] = 5
    #: a landing batch is written every ``roll_rows`` rows, or after ``roll_seconds`` once it holds
    #: at least the policy's ``monitoring.min_batch_rows`` (a smaller batch would be quarantined)
    roll_rows: Annotated[int, Field(ge=1)] = 1_000
    roll_seconds: Annotated[float, Field(gt=0)] = 300.0
    #: requests waiting for the shadow; when full, the shadow skips (counted), the request never waits
    shadow_queue: Annotated[int, Field(ge=1)] = 1_000
    #: the shadow process scores the requests waiting (up to ``shadow_batch``, gathered for at most
    #: ``shadow_linger_seconds``) in one model call: less CPU taken from the request path
    shadow_batch: Annotated[int, Field(ge=1)] = 64
    shadow_linger_seconds: Annotated[float, Field(ge=0)] = 0.05
    #: the shadow process's ``os.nice`` increment: the request path wins the cores
    shadow_nice: Annotated[int, Field(ge=0, le=19)] = 10
    #: schedule the shadow process ``SCHED_IDLE`` (Linux): it runs only on a core nothing else wants
    #: and yields it at once to a request (a nice value alone still cost +28 % p99 on 2 cores); on a
    #: saturated host its queue fills and requests are skipped, counted in ``/metrics``
    shadow_idle: bool = True
    #: score the shadow challenger at all
    shadow: bool = True
