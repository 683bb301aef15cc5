"""Configuration files (YAML, and JSON, which YAML reads too), read strictly.

Strict in the ways a hand-edited file goes wrong without anyone noticing: text that is not
UTF-8 is refused rather than guessed, and a key given twice in one mapping is an error (plain
YAML keeps the last one silently, so a reviewer reading the first would be misled).
Only plain data is built (yaml.SafeLoader): no tag can construct an object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlFileError(ValueError):
    """A file that cannot be read as configuration; one line starting with its path."""


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
