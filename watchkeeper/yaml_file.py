"""Configuration files (YAML, and JSON, which YAML reads too), read strictly.

Strict in the ways a hand-edited file goes wrong without anyone noticing: text that is not
UTF-8 is refused rather than guessed, and a key given twice in one mapping is an error (plain
YAML keeps the last one silently, so a reviewer reading the first would be misled).
Only plain data is built (yaml.SafeLoader): no tag can construct an object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml


class YamlFileError(ValueError):
    """A file that cannot be read as configuration; one line starting with its path."""


T = TypeVar("T")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
        except TypeError:   # an unhashable key (a list as a key): let SafeLoader report it
            break
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path: str | Path) -> Any:
    """The parsed document of `path`, or a YamlFileError naming the file (and the line, when known)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise YamlFileError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise YamlFileError(f"{path}: not UTF-8 text (invalid byte 0x{error.object[error.start]:02x} "
                            f"at byte {error.start})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: plain data only  # nosec B506
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        raise YamlFileError(f"{path}: not valid YAML: {where}{problem}") from None


def load_document(path: str | Path, parse: Callable[[Any], T], error: type[ValueError]) -> T:
    """`parse` applied to the document at `path`; any problem raised as `error`, one line naming the file.

    The policy files (alerting, residency) share this so that each reports a bad file the same way.
    """
    try:
        data = load_yaml(path)
    except YamlFileError as problem:
        raise error(str(problem)) from None
    try:
        return parse(data)
    except error as problem:
        raise error(f"{path}: {problem}") from None


def shown(value: Any) -> str:
    """A value as an error message may quote it: its type and a short repr."""
    return f"{type(value).__name__} {value!r}"[:80]


def checked_mapping(value: Any, where: str, error: type[ValueError], allowed: set[str] | None = None,
                    required: tuple[str, ...] = ()) -> dict:
    """`value` if it is a mapping with only `allowed` keys and every `required` one, else `error` at `where`."""
    if not isinstance(value, dict):
        raise error(f"{where}: expected a mapping, got {shown(value)}")
    unknown = sorted(str(k) for k in value if allowed is not None and k not in allowed)
    if unknown:
        raise error(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed or ()))})")
    missing = [k for k in required if k not in value]
    if missing:
        raise error(f"{where}: missing key {missing[0]!r}")
    return value
