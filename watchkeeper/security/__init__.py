"""Keys, signatures and envelopes: what protects Watchkeeper's stored state.

``kms`` (key-encryption keys by id), ``envelope`` (AES-GCM encryption at rest), ``sealed_files``
(Parquet files of rows, encrypted), ``signing`` (HMAC for the few pickled library objects).
Nothing here knows Dagster; the store, the engine and the CLI call it at their edges.
"""
