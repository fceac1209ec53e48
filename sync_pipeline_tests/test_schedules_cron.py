"""A connection's schedule may be a cron expression besides nightly / every_3_hours / manual (UTC)."""

from datetime import datetime, timezone

import dagster as dg
import pytest

from sync_pipeline.config import ConfigError, load_settings
from sync_pipeline.defs.build import build_definitions
from sync_pipeline_tests.conftest import write_config


def test_a_cron_schedule_becomes_the_connection_schedule_in_utc(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:1", schedule='"*/15 * * * *"')
    assert load_settings(config, strict=False).connections["fakturownia_to_sugester"].cron == "*/15 * * * *"
    [schedule] = [s for s in build_definitions(config).schedules if s.name != "system_status_schedule"]
    assert (schedule.name, schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "fakturownia_to_sugester_schedule", "*/15 * * * *", "UTC", "fakturownia_to_sugester_job")
    assert "*/15 * * * *" in schedule.description


@pytest.mark.parametrize("name, cron", [("nightly", "0 0 * * *"), ("every_3_hours", "0 */3 * * *"), ("manual", None)])
def test_named_schedules_keep_their_cron(tmp_path, name, cron):
    config = write_config(tmp_path, "http://127.0.0.1:1", schedule=name)
    assert load_settings(config, strict=False).connections["fakturownia_to_sugester"].cron == cron


@pytest.mark.parametrize("bad", ['"61 * * * *"', '"* * * * * *"', '"0 0 30 2 *"', "hourly", '"*/7 * * 13"'])
def test_a_bad_schedule_names_the_key_and_never_the_value(tmp_path, bad):
    config = write_config(tmp_path, "http://127.0.0.1:1", schedule=bad)
    with pytest.raises(ConfigError) as e:
        load_settings(config, strict=False)
    message = str(e.value)
    assert message.startswith(f"{config}: connections.fakturownia_to_sugester.schedule: ")
    assert bad.strip('"') not in message


def test_a_tick_is_skipped_while_the_previous_run_of_the_job_has_not_finished(tmp_path):
    defs = build_definitions(write_config(tmp_path, "http://127.0.0.1:1"))
    [schedule] = [s for s in defs.schedules if s.name != "system_status_schedule"]
    job = defs.resolve_job_def(schedule.job_name)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance,
                                            scheduled_execution_time=datetime(2026, 11, 20, 3, tzinfo=timezone.utc))
        assert len(schedule.evaluate_tick(context).run_requests) == 1
        run = instance.create_run_for_job(job)  # not started yet: unfinished
        result = schedule.evaluate_tick(context)
        assert not result.run_requests and run.run_id[:8] in result.skip_message
        instance.report_run_failed(run)
        assert len(schedule.evaluate_tick(context).run_requests) == 1
