"""Ticks the code location's sensors the way the Dagster sensor daemon does, on demand.

The demo replays 14 days in a minute or two, so it cannot wait for the daemon's polling
interval; everything else is the daemon's own path: the code location is loaded from
workspace.yaml (so runs and ticks belong to the `watchkeeper` location the UI shows), each
tick is evaluated by the daemon's tick processor (tick history, cursor, dynamic partitions,
asset events, run keys launched once), and its runs are created from the remote job with the
sensor's tags and submitted to the instance. Only the run launcher differs: this instance
executes a submitted run at once, in this process and with the in-process executor
(InProcessRunLauncher), so the next day's tick sees the finished runs, as it would after the
daemon's interval, and the replay pays no subprocess per run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
from dagster._core.execution.api import execute_run
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.remote_representation.external import RemoteSensor
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import InstigatorStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.sensor import _process_tick_generator
from dagster._record import copy
from dagster._utils.hosted_user_process import recon_job_from_origin

LOCATION = "watchkeeper"           # workspace.yaml's location_name
IN_PROCESS = {
    "run_launcher": {"module": "cli.location_sensors", "class": "InProcessRunLauncher"},
    "run_coordinator": {"module": "dagster._core.run_coordinator.default_run_coordinator",
                        "class": "DefaultRunCoordinator"},
}
LOGGER = logging.getLogger("watchkeeper.location_sensors")


class InProcessRunLauncher(SyncInMemoryRunLauncher):
    """Executes a launched run now, in this process, with the in-process executor (the run as
    stored keeps the sensor's run config; only how its steps execute differs)."""

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        in_process = copy(run, run_config={**run.run_config, "execution": {"config": {"in_process": {}}}})
        execute_run(recon_job_from_origin(context.job_code_origin), in_process, self._instance)


class LocationSensors:
    """`with LocationSensors(dagster_home, workspace) as sensors: sensors.tick("inference_sensor")`."""

    def __init__(self, dagster_home: Path, workspace: Path) -> None:
        self.instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home), overrides=IN_PROCESS))
        self.context = WorkspaceProcessContext(self.instance, WorkspaceFileTarget(paths=[str(workspace)]))
        location = self.context.create_request_context().get_code_location(LOCATION)
        repository = next(iter(location.get_repositories().values()))
        self.sensors: dict[str, RemoteSensor] = {s.name: s for s in repository.get_sensors()}
        self.failed_runs: list[str] = []

    def __enter__(self) -> LocationSensors:
        return self

    def __exit__(self, *exc) -> None:
        self.context.__exit__(*exc)
        self.instance.dispose()

    def tick(self, name: str) -> list[dg.DagsterRun]:
        """One tick of sensor `name` (turned on if it is off), its runs executed; returns the runs it launched."""
        sensor = self.sensors[name]
        self._make_due(sensor)
        outcome = list(_process_tick_generator(self.context, LOGGER, sensor, self._state(sensor), None,
                                               self.instance.get_tick_retention_settings(InstigatorType.SENSOR),
                                               None))
        if error := next((o for o in outcome if o is not None), None):
            raise RuntimeError(f"sensor {name} failed: {error.to_string()}")
        latest = self.instance.get_ticks(sensor.get_remote_origin_id(), sensor.selector_id, limit=1)
        runs = [self.instance.get_run_by_id(run_id) for run_id in (latest[0].run_ids if latest else [])]
        self.failed_runs += [f"{r.job_name}[{r.tags.get('dagster/partition')}] {r.run_id}" for r in runs
                             if r.status != dg.DagsterRunStatus.SUCCESS]
        return runs

    def stop_all(self) -> None:
        """Leave every sensor off with its cursor kept: turned on later, it resumes where the replay ended."""
        for sensor in self.sensors.values():
            self.instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)

    def _state(self, sensor: RemoteSensor):
        state = self.instance.get_instigator_state(sensor.get_remote_origin_id(), sensor.selector_id)
        if state is None or state.status != InstigatorStatus.RUNNING:
            state = self.instance.start_sensor(sensor)
        return state

    def _make_due(self, sensor: RemoteSensor) -> None:
        """Move the last tick back by the sensor's interval: the daemon would tick it now."""
        state = self._state(sensor)
        data = state.instigator_data
        if data is None or not (data.last_tick_timestamp or data.last_tick_start_timestamp):
            return
        back = (sensor.min_interval_seconds or 0) + 1
        self.instance.update_instigator_state(state.with_data(data._replace(
            last_tick_timestamp=data.last_tick_timestamp and data.last_tick_timestamp - back,
            last_tick_start_timestamp=data.last_tick_start_timestamp and data.last_tick_start_timestamp - back)))
