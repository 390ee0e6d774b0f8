"""YAML in the GitOps repository: new files with stable key order, edits as round-trips.

Edits keep the comments, key order and formatting of everything mlops-ci does not own.
"""

from __future__ import annotations

import io
from typing import Any


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long URIs
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def load(text: bytes | str) -> Any:
    return _yaml().load(text.decode("utf-8") if isinstance(text, bytes) else text)


def dump(data: Any) -> bytes:
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue().encode("utf-8")


def merge_owned(node: Any, owned: dict[str, Any]) -> None:
    """Write every leaf of ``owned`` into ``node``: mappings merge, anything else replaces.

    Keys that exist keep their place and comments; missing keys are appended to their mapping.
    """
    from ruamel.yaml.comments import CommentedMap

    for key, value in owned.items():
        if isinstance(value, dict) and value:
            if not isinstance(node.get(key), dict):
                node[key] = CommentedMap()
            merge_owned(node[key], value)
        elif node.get(key) != value:
            node[key] = value
