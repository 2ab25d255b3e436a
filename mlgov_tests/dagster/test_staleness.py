"""One changed byte in the training file marks everything downstream stale in the UI."""

from __future__ import annotations

from dagster import AssetKey, SensorResult, build_sensor_context, instance_for_test
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC
from mlgov_assets.definitions import defs
from mlgov_assets.defs.data import source_files_sensor as sensor_for
from mlgov_assets.defs.scope import ProjectScope
from mlgov_assets.resources import MlgovResource

source_files_sensor = sensor_for(ProjectScope("adult", DEFAULT_PROJECT_SPEC))


def _status(instance, key: str) -> StaleStatus:
    return get_stale_status_resolver(instance, list(defs.assets or [])).get_status(AssetKey(["adult", key]))


def _tick(instance, env, cursor=None):
    ctx = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"mlgov": MlgovResource(project_dir=str(env.project), home=str(env.home))},
    )
    result = source_files_sensor(ctx)
    return ctx, result


def test_changed_byte_marks_downstream_stale_via_the_observation_sensor(trained):
    env = trained.env
    with instance_for_test(temp_dir=str(trained.instance_dir)) as instance:
        assert _status(instance, "training_data") == StaleStatus.FRESH
        assert _status(instance, "champion") == StaleStatus.FRESH

        _ctx, first = _tick(instance, env)
        assert isinstance(first, SensorResult)
        for ev in first.asset_events:  # the daemon stores these; here we do it by hand
            instance.report_runless_asset_event(ev)
        assert _status(instance, "training_data") == StaleStatus.FRESH  # same bytes, same md5

        _, quiet = _tick(instance, env, cursor=first.cursor)
        assert not isinstance(quiet, SensorResult)  # SkipReason: nothing changed

        path = env.project / "data" / "adult.data"
        raw = bytearray(path.read_bytes())
        i = raw.index(b"State-gov")
        raw[i] = ord("s")  # one byte
        path.write_bytes(bytes(raw))
        _, changed = _tick(instance, env, cursor=first.cursor)
        assert [e.asset_key for e in changed.asset_events] == [AssetKey(["adult", "training_file"])]
        for ev in changed.asset_events:
            instance.report_runless_asset_event(ev)
        # training_data is stale ("has a new dependency data version"). Its own DataVersion is
        # the DVC md5 (user-provided), which Dagster cannot predict before re-materializing, so
        # the UI flags the first asset below the changed file; re-materializing it then marks
        # the rest of the path stale through the new md5.
        assert _status(instance, "training_data") == StaleStatus.STALE
        assert _status(instance, "holdout_data") == StaleStatus.FRESH
