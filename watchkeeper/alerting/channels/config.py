"""Checks of channel constructor arguments: a bad config fails when the policy is loaded,
with one line naming the argument, not at the first alert."""

from __future__ import annotations


def require_text(channel: str, **values: str | None) -> None:
    for arg, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{channel} channel: {arg} must be a non-empty string, got {value!r}")


def require_url(channel: str, **values: str) -> None:
    require_text(channel, **values)
    for arg, value in values.items():
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{channel} channel: {arg} must be an http(s) URL, got {value!r}")


def require_timeout(channel: str, timeout: float) -> None:
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"{channel} channel: timeout must be a positive number of seconds, got {timeout!r}")
