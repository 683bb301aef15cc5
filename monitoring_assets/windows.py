"""production_window: one day of production traffic per model, checked and kept as it arrived."""

import dagster as dg

from monitoring_assets.external import inference_log
from monitoring_assets.partitions import daily_windows
from monitoring_assets.reference import reference_profile
from watchkeeper.monitor import WINDOW, ModelWindow
from watchkeeper.tables import markdown_table

ALL_PROFILES = dg.AssetDep(reference_profile, partition_mapping=dg.AllPartitionMapping())

SPEC = dg.AssetSpec(
    "production_window",
    deps=[inference_log, ALL_PROFILES],
    group_name="monitoring",
    kinds={"parquet"},
    description="Per day, for every monitored model: the predictions of that window, validated "
                "against the model's reference profile. Problems are recorded; rows are never dropped.",
)


def metadata(day: str, outcomes: list[ModelWindow]) -> dict:
    rows = [{"model": o.model, "version": o.version, "rows": o.rows or 0,
             "problems": "; ".join(o.problems) or o.failures.get(WINDOW)} for o in outcomes]
    return {"models": len(rows), "rows": sum(r["rows"] for r in rows),
            "windows": dg.MetadataValue.md(markdown_table(rows, ["model", "version", "rows", "problems"]))}
