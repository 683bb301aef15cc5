"""Privacy by default: sensitive columns reported only as aggregates, retention per class of data,
and erasure of one model's or one subject's data (docs/security.md)."""
