"""The three roles of Watchkeeper's endpoints, ordered by what they may do.

`viewer` reads (GraphQL queries and subscriptions, pages, metrics); `operator` also acts on
runs and automation (launch, re-execute, terminate, backfills, sensors and schedules);
`admin` may do everything, including what changes the instance itself (wiping assets,
deleting runs, reloading code, concurrency limits). A higher role includes the lower ones,
so one comparison decides every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = {role.label: role for role in Role}


def highest_role(names: Iterable[str]) -> Role | None:
    """The highest Watchkeeper role among a token's role names; None when it grants none.

    Names that are not Watchkeeper roles (an IdP grants many) are ignored, not errors.

    >>> highest_role(["offline_access", "viewer", "operator"]).label
    'operator'
    >>> highest_role(["uma_authorization"]) is None
    True
    """
    granted = [ROLE_NAMES[name] for name in names if name in ROLE_NAMES]
    return max(granted, default=None)
