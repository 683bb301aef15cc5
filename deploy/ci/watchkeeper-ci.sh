#!/usr/bin/env bash
# Watchkeeper's three CI/CD checks for any runner (Jenkins, Buildkite, a cron job, a laptop).
# The GitHub Actions workflow and the GitLab CI pipeline beside this file run the same commands.
#
#   deploy/ci/watchkeeper-ci.sh validate   # the monitoring and alerting policies load and check
#   deploy/ci/watchkeeper-ci.sh drift      # the candidate's training data looks like production
#   deploy/ci/watchkeeper-ci.sh gate       # the candidate version beats the champion on labelled data
#   deploy/ci/watchkeeper-ci.sh all        # the three, in that order, stopping at the first failure
#
# Exit codes decide: 0 pass, 1 the check failed (drift found, candidate not better), 2 bad input
# (a policy that does not load, a missing file, an unreachable MLflow). Settings come from the
# environment; the defaults suit a checkout of this repository:
#   WATCHKEEPER_MONITORING  monitoring policy        (deploy/monitoring.yaml)
#   WATCHKEEPER_ALERTING    alerting policy          (deploy/alerting.yaml)
#   CANDIDATE_TRAINING_DATA Parquet/CSV the candidate was trained on (the drift reference)
#   PRODUCTION_DATA         Parquet/CSV of recent production inputs (the drift current window)
#   MLFLOW_TRACKING_URI     MLflow tracking/registry URI
#   MODEL, CANDIDATE_VERSION, EVALUATION_DATA (labelled Parquet/CSV), GATE_MARGIN (0), GATE_METRIC (task's primary)
set -euo pipefail

WATCHKEEPER="${WATCHKEEPER:-watchkeeper}"
REPORTS="${REPORTS:-watchkeeper-reports}"

validate() {
  "$WATCHKEEPER" config validate \
    --monitoring "${WATCHKEEPER_MONITORING:-deploy/monitoring.yaml}" \
    --alerting "${WATCHKEEPER_ALERTING:-deploy/alerting.yaml}"
}

drift() {
  mkdir -p "$REPORTS"
  "$WATCHKEEPER" drift --reference "${CANDIDATE_TRAINING_DATA:?set CANDIDATE_TRAINING_DATA}" \
    --current "${PRODUCTION_DATA:?set PRODUCTION_DATA}" --format json --output "$REPORTS/drift.json" --fail-on-drift
}

gate() {
  mkdir -p "$REPORTS"
  "$WATCHKEEPER" gate --tracking-uri "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI}" --model "${MODEL:?set MODEL}" \
    --candidate "${CANDIDATE_VERSION:?set CANDIDATE_VERSION}" --data "${EVALUATION_DATA:?set EVALUATION_DATA}" \
    --margin "${GATE_MARGIN:-0}" ${GATE_METRIC:+--metric "$GATE_METRIC"} --format json > "$REPORTS/gate.json"
}

case "${1:-all}" in
  validate|drift|gate) "$1" ;;
  all) validate && drift && gate ;;
  *) echo "usage: $0 validate|drift|gate|all" >&2; exit 2 ;;
esac
