"""A fingerprint as a token every ticketing system accepts as a label or correlation id.

Fingerprints read like `churn:3:data_drift`; Jira labels cannot hold ':' or spaces, and a
ServiceNow encoded query treats '^' and '=' as syntax, so both systems get a hash instead.
64 bits of SHA-256 make a collision between two live problems practically impossible.

>>> fingerprint_key("churn:3:data_drift")
'watchkeeper-bf240d0de0f5812f'
"""

from __future__ import annotations

import hashlib

PREFIX = "watchkeeper-"


def fingerprint_key(fingerprint: str) -> str:
    return PREFIX + hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:16]
