#!/usr/bin/env bash
# Regenerate deploy/grafana/schema/ from the TypeScript types that npm @grafana/schema
# publishes for the Grafana version the dashboards target (grafana-foundation-sdk
# 1769699379!11.6.0 builds dashboards for Grafana 11.6). ts-json-schema-generator turns
# each type into a JSON Schema (draft-07, additionalProperties false); tests/test_grafana.py
# validates every dashboard, panel options and panel field config against them offline.
# Needs node and npm (the npm registry); the packages go to a temporary folder.
#
#     bash tools/grafana_schema.sh
set -euo pipefail
GRAFANA_SCHEMA=11.6.0
GENERATOR=2.10.0
PANELS=(timeseries stat bargauge statushistory statetimeline)   # the panel types the dashboards use

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/deploy/grafana/schema"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --silent \
  "@grafana/schema@$GRAFANA_SCHEMA" "ts-json-schema-generator@$GENERATOR"
raw="$work/node_modules/@grafana/schema/dist/esm/raw"

generate() {  # types file, type name, output file
  "$work/node_modules/.bin/ts-json-schema-generator" --path "$1" --type "$2" --no-type-check -o "$3"
}

rm -rf "$out" && mkdir -p "$out/panels"
generate "$raw/dashboard/x/dashboard_types.gen.d.ts" Dashboard "$out/dashboard.schema.json"
for panel in "${PANELS[@]}"; do
  types="$(ls "$raw/composable/$panel/panelcfg/x/"*_types.gen.d.ts)"
  generate "$types" Options "$out/panels/$panel.options.schema.json"
  if grep -q "export interface FieldConfig " "$types"; then
    generate "$types" FieldConfig "$out/panels/$panel.fieldconfig.schema.json"
  fi
done
printf '{"package": "@grafana/schema", "version": "%s", "generator": "ts-json-schema-generator@%s"}\n' \
  "$GRAFANA_SCHEMA" "$GENERATOR" > "$out/SOURCE.json"
echo "wrote $(find "$out" -name '*.schema.json' | wc -l) schemas to $out"
