"""Test helper: runs sensor ticks of a given Definitions and the runs they request, in this process.

This is what the Dagster daemon does, without its polling interval and run workers, for tests
that need Definitions of their own (a plugin, another config); the demo uses cli/location_sensors.py.
"""

from __future__ import annotations

import dagster as dg


class SensorDriver:
    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursors: dict[str, str | None] = {}
        self.failed_runs: list[str] = []

    def tick(self, sensor_name: str) -> list[dg.RunRequest]:
        """Evaluate one tick, apply its partition requests and events, and execute its runs."""
        sensor = self.defs.resolve_sensor_def(sensor_name)
        context = dg.build_sensor_context(instance=self.instance, instance_ref=self.instance.get_ref(), cursor=self.cursors.get(sensor_name),
                                          definitions=self.defs, sensor_name=sensor_name,
                                          resources=self.defs.resources)
        result = sensor.evaluate_tick(context)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for event in result.asset_events or []:
            self.instance.report_runless_asset_event(event)
        self.cursors[sensor_name] = result.cursor
        for request in result.run_requests or []:
            if not self._already_ran(sensor, request):
                self._execute(sensor, request)
        return list(result.run_requests or [])

    def _already_ran(self, sensor: dg.SensorDefinition, request: dg.RunRequest) -> bool:
        """The daemon's run-key rule: a sensor launches each run key once."""
        if not request.run_key:
            return False
        tags = {"dagster/sensor_name": sensor.name, "dagster/run_key": request.run_key}
        return bool(self.instance.get_run_records(dg.RunsFilter(tags=tags), limit=1))

    def _execute(self, sensor: dg.SensorDefinition, request: dg.RunRequest) -> None:
        job_name = request.job_name or sensor.job_name
        tags = {**request.tags, "dagster/sensor_name": sensor.name}
        if request.run_key:
            tags["dagster/run_key"] = request.run_key
        result = self.defs.resolve_job_def(job_name).execute_in_process(
            instance=self.instance, partition_key=request.partition_key, tags=tags, raise_on_error=False,
            run_config={**(request.run_config or {}), "loggers": {"console": {"config": {"log_level": "WARNING"}}}})
        if not result.success:
            self.failed_runs.append(f"{job_name}[{request.partition_key}] {result.run_id}")
