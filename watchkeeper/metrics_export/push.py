"""Push metrics to a Prometheus Pushgateway, for runs that end before a scrape could see them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, push_to_gateway


def push_metrics(gateway_url: str, job: str, registry: CollectorRegistry,
                 grouping_key: dict[str, str] | None = None, timeout: float = 10.0) -> None:
    """Replace the metrics of (`job`, `grouping_key`) on the gateway with `registry`'s.

    PUT semantics: series the run no longer produces disappear from the gateway, so a
    model that left the store does not linger there. Raises OSError with the gateway's
    answer when it refuses the push or cannot be reached.
    """
    if not job:
        raise ValueError("a Pushgateway job name is required")
    push_to_gateway(gateway_url, job=job, registry=registry, grouping_key=grouping_key, timeout=timeout)
