"""YAML in the GitOps repository: new files with stable key order, edits as round-trips.

Edits keep the comments, key order and formatting of everything mlops-ci does not own.
"""

from __future__ import annotations

import io
from typing import Any


class _Absent:
    """An owned key that must not be there (a setting that was removed: a canary, a GPU, a scale metric)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class Whole(dict):
    """An owned mapping written whole: what the file holds under its key is replaced, not merged
    (a setting whose keys are the user's choice, such as the payload logger's storage parameters,
    where a merge would keep a key the config no longer has)."""


def prune(data: Any) -> Any:
    """``data`` without the keys whose value is ABSENT (what a new file holds)."""
    if isinstance(data, dict):
        return {k: prune(v) for k, v in data.items() if v is not ABSENT}
    if isinstance(data, list):
        return [prune(v) for v in data]
    return data


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

    Keys that exist keep their place and comments. A missing key is inserted after the nearest
    preceding key of ``owned`` that exists (so ``maxReplicas`` lands beside ``minReplicas``),
    else before the nearest following one, else at the end. A key whose owned value is ABSENT is
    removed. A list of mappings that all have a ``name`` (containers, env, ports) merges item by
    name, as a strategic merge patch does: items of other names (a sidecar) stay.
    """
    from ruamel.yaml.comments import CommentedMap

    order = list(owned)
    for i, (key, value) in enumerate(owned.items()):
        if value is ABSENT:
            if key in node:
                del node[key]
            continue
        if isinstance(value, Whole):
            if key not in node:
                _insert(node, key, prune(dict(value)), order, i)
            elif node[key] != prune(dict(value)):
                node[key] = prune(dict(value))
            continue
        if key not in node:
            _insert(node, key, CommentedMap() if isinstance(value, dict) and value
                    else [] if _named(value) else prune(value), order, i)
        if isinstance(value, dict) and value:
            if not isinstance(node.get(key), dict):
                node[key] = CommentedMap()
            merge_owned(node[key], value)
        elif _named(value) and isinstance(node.get(key), list) and all(isinstance(x, dict) for x in node[key]):
            _merge_named(node[key], value)
        elif node.get(key) != value:
            node[key] = prune(value)


def drop_unowned(node: Any, owned: dict[str, Any], prefix: str) -> None:
    """Remove the keys starting with ``prefix`` that ``owned`` no longer has, in every mapping where
    ``owned`` holds such keys (labels and annotations mlops-ci owns by name: lineage from an
    earlier version or a rollback never survives a promotion)."""
    if not isinstance(node, dict):
        return
    if any(isinstance(k, str) and k.startswith(prefix) for k in owned):
        for key in [k for k in node if isinstance(k, str) and k.startswith(prefix) and k not in owned]:
            del node[key]
    for key, value in owned.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            drop_unowned(node[key], value, prefix)
        elif _named(value) and isinstance(node.get(key), list):
            for item in value:
                current = next((x for x in node[key] if isinstance(x, dict) and x.get("name") == item["name"]), None)
                if current is not None:
                    drop_unowned(current, item, prefix)


def _named(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, dict) and "name" in x for x in value)


def _merge_named(items: list, owned: list[dict[str, Any]]) -> None:
    from ruamel.yaml.comments import CommentedMap

    for item in owned:
        current = next((x for x in items if x.get("name") == item["name"]), None)
        if current is None:
            current = CommentedMap()
            items.append(current)
        merge_owned(current, item)


def _insert(node: Any, key: str, value: Any, order: list[str], index: int) -> None:
    keys = list(node.keys())
    before = [k for k in order[:index] if k in node]
    after = [k for k in order[index + 1:] if k in node]
    if before and hasattr(node, "insert"):
        node.insert(keys.index(before[-1]) + 1, key, value)
    elif after and hasattr(node, "insert"):
        node.insert(keys.index(after[0]), key, value)
    else:
        node[key] = value


def append_item(seq: Any, value: Any) -> None:
    """Append ``value`` to a list read by ``load``, after its last item but before the comment
    lines that follow that item (ruamel keeps those on the last item: `- a  # note` then
    `# end of the list`), so a hand-written closing comment stays at the end of the list."""
    last = len(seq) - 1
    seq.append(value)
    items = getattr(getattr(seq, "ca", None), "items", None)
    token = (items.get(last) or [None])[0] if items is not None and last >= 0 else None
    if token is None or "\n" not in token.value:
        return
    head, _, rest = token.value.partition("\n")
    if not rest.strip():
        return  # only the item's own end-of-line comment
    from ruamel.yaml.tokens import CommentToken

    token.value = head + "\n"
    items[last + 1] = [CommentToken("\n" + rest, token.start_mark, None), None, None, None]
