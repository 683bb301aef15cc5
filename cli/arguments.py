"""Argument types of the `watchkeeper` command: every value that can be wrong is refused while
the arguments are parsed, before any work starts, in one line naming the argument
(`watchkeeper gate: error: argument --confidence: must lie strictly between 0 and 1, got 1.5`).

Only the standard library is imported here, so parsing stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

MAX_TIMEOUT_SECONDS = 3600.0
# MLflow's own rule for an alias; a version is a positive whole number.
ALIAS = re.compile(r"[A-Za-z_][\w-]{0,254}")
TRACKING_SCHEMES = ("http", "https", "sqlite", "file", "postgresql", "mysql", "mssql", "databricks")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block would bury the one line that matters."""

    def error(self, message: str) -> None:  # argparse's hook; it must not return
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _refuse(text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(text)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _refuse(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise _refuse(f"expected a finite number, got {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _refuse(f"expected a whole number, got {text!r}") from None


def port(text: str) -> int:
    """A TCP port to serve on, 1-65535."""
    value = _whole(text)
    if not 1 <= value <= 65535:
        raise _refuse(f"a port is 1-65535, got {value}")
    return value


def port_or_any(text: str) -> int:
    """A TCP port, or 0 for any free port (the one chosen is printed)."""
    value = _whole(text)
    return value if value == 0 else port(text)


def positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise _refuse(f"must be at least 1, got {value}")
    return value


def margin(text: str) -> float:
    """The gate's margin: absolute for scores in [0, 1], relative for errors, so |margin| < 1."""
    value = _number(text)
    if not -1 < value < 1:
        raise _refuse(f"must lie strictly between -1 and 1 (an absolute score or a relative error), got {value}")
    return value


def confidence(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise _refuse(f"must lie strictly between 0 and 1, got {value}")
    return value


def seconds(text: str) -> float:
    value = _number(text)
    if not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise _refuse(f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds, got {value:g}")
    return value


def name(text: str) -> str:
    """A model, column or job name: not blank, no control characters (they would forge log lines)."""
    if not text.strip():
        raise _refuse("must not be blank")
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise _refuse(f"must not contain control characters (found U+{ord(bad):04X})")
    return text


def version(text: str) -> str:
    """A registered model version number or an alias."""
    if text.isdigit() and int(text) >= 1 or ALIAS.fullmatch(text):
        return text
    raise _refuse(f"expected a version number (1, 2, ...) or an alias like champion, got {text!r}")


def input_file(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise _refuse(f"{path}: no such file")
    if not path.is_file():
        raise _refuse(f"{path}: not a file")
    if not os.access(path, os.R_OK):
        raise _refuse(f"{path}: not readable")
    return path


def output_file(text: str) -> Path:
    """A file to write: its folder must exist and be writable, and it must not be a folder itself."""
    path = Path(text)
    if path.is_dir():
        raise _refuse(f"{path}: is a folder, expected a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise _refuse(f"{path}: the folder {folder} does not exist")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise _refuse(f"{path}: not writable")
    return path


def folder(text: str) -> Path:
    """A folder to work in: it may not exist yet, but it must not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise _refuse(f"{path}: is a file, expected a folder")
    return path


def existing_folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise _refuse(f"{path}: no such folder")
    return path


def http_url(text: str) -> str:
    """An http(s) URL with a host and, when given, a valid port."""
    parts = _url(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(f"expected an http(s) URL like https://host:9091, got {shown_url(text)!r}")
    return text


def tracking_uri(text: str) -> str:
    """An MLflow tracking URI: http(s) with a host, sqlite:///path to an existing database, a database
    URL, or a local mlruns folder. A mistyped sqlite path would make MLflow create an empty registry."""
    parts = _url(text)
    if not parts.scheme or len(parts.scheme) == 1:   # a plain path (a Windows drive letter is one letter)
        return str(existing_folder(text))
    if parts.scheme not in TRACKING_SCHEMES:
        raise _refuse(f"unsupported scheme {parts.scheme!r} (one of {', '.join(TRACKING_SCHEMES)})")
    if parts.scheme in ("http", "https"):
        return http_url(text)
    if parts.scheme == "sqlite":
        database = text.removeprefix("sqlite:///")
        if database == text or not Path(database).is_file():
            raise _refuse(f"{text}: no such MLflow database (expected sqlite:///path/to/mlflow.db)")
    if parts.scheme == "file" and not Path(parts.path).is_dir():
        raise _refuse(f"{shown_url(text)}: no such folder")
    return text


def _url(text: str):
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as error:
        raise _refuse(f"not a valid URL ({error}): {shown_url(text)!r}") from None
    if any(c.isspace() for c in text):
        raise _refuse(f"a URL has no spaces: {shown_url(text)!r}")
    return parts


def shown_url(text: str) -> str:
    """A URL as an error message may show it: a user:password@ part is masked."""
    scheme, sep, rest = text.partition("://")
    host_part, slash, path = rest.partition("/")
    if not sep or "@" not in host_part:
        return text
    return f"{scheme}://***@{host_part.rsplit('@', 1)[1]}{slash}{path}"
