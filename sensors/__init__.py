"""Sensors: one per outside event that should start work."""

from sensors.alert_delivery import alert_delivery_sensor
from sensors.feature_store import feast_sensor
from sensors.inference_log import inference_sensor
from sensors.registry import registry_sensor
from sensors.retraining import retraining_sensor
from sensors.scorecard import scorecard_sensor
from sensors.ticket_sync import ticket_sync_sensor

SENSORS = [registry_sensor, inference_sensor, scorecard_sensor, retraining_sensor, alert_delivery_sensor,
           feast_sensor, ticket_sync_sensor]
