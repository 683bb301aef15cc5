"""Keys, signatures and (later) envelopes: what protects Watchkeeper's stored state.

Nothing here knows Dagster; the store, the engine and the CLI call it at their edges.
"""
