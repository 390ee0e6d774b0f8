"""Read `.mlops-ci.yaml` with ruamel.yaml and validate it; every error names file:line:column.

ruamel.yaml's round-trip loader keeps the line and column of every key and value, so a
pydantic error location such as ``("models", "churn", "evaluation", "gates", "auc", "min")``
is mapped back to the place in the file where the fix belongs.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mlops_ci.config.schema import Config
from mlops_ci.config.semantics import Problem, problems
from mlops_ci.errors import ConfigError

CONFIG_NAME = ".mlops-ci.yaml"
PROMOTIONS_NAME = ".mlops-ci.promotions.yaml"  # promotion as code, beside the config (mlops_ci.promotions)
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and where it came from: the project root is its folder."""

    config: Config
    path: Path

    @property
    def root(self) -> Path:
        return self.path.parent


def find_config(start: Path) -> Path:
    """The nearest `.mlops-ci.yaml` at or above ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_NAME} found in {start} or any parent folder",
        hint=f"create one (see examples/churn/{CONFIG_NAME}) or pass --config PATH",
    )


MAX_DEPTH = 64  # deeper than any config needs; far from Python's recursion limit


def _refuse_aliases(yaml, text: str, name: str) -> None:
    """A config has no use for anchors and aliases, and a few hundred bytes of nested aliases expand
    to gigabytes (a "billion laughs"): refused, naming the first, before anything is built."""
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

    depth = 0
    for event in yaml.parse(text):
        anchor = getattr(event, "anchor", None)
        if isinstance(event, AliasEvent) or anchor:
            mark = event.start_mark
            raise ConfigError(f"{name}:{mark.line + 1}:{mark.column + 1}: YAML anchors and aliases (&name, *name) "
                              "are not allowed in this file", hint="write the values out where they are used")
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise ConfigError(f"{name}:{mark.line + 1}:{mark.column + 1}: nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def load_yaml(raw: bytes, name: str) -> Any:
    """One YAML document (ruamel round-trip nodes, which keep positions for error messages);
    ConfigError naming ``name``:line:column if it is not UTF-8 or not YAML, holds anchors or
    aliases, or nests too deeply."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name}: not UTF-8 text (byte {err.start})", hint="save the file as UTF-8") from err
    try:
        yaml = YAML(typ="rt")
        _refuse_aliases(yaml, text, name)
        return yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        what = " ".join(x for x in (err.context, err.problem) if x) or "invalid YAML"
        raise ConfigError(f"{where}: malformed YAML: {what}",
                          hint="fix the indentation or quoting at that place") from err
    except YAMLError as err:
        raise ConfigError(f"{name}: malformed YAML: {err}") from err
    except (RecursionError, ValueError) as err:  # nesting; an integer of more than 4300 digits
        raise ConfigError(f"{name}: not a usable config: {type(err).__name__}: {str(err)[:200]}") from err


def load_config(path: Path, *, check_paths: bool = False,
                checks: Sequence[Callable[[Config], list[Problem]]] = ()) -> LoadedConfig:
    """Read and validate ``path``. With ``check_paths``, the files each model names must also be
    there (:func:`mlops_ci.config.paths.path_problems`): what `config validate` and the commands
    that run stages ask for. ``checks`` add problems that layers above the config know of (the
    backend names their registries hold, mlops_ci.backends.name_problems), reported at their line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found", hint="pass --config PATH or create it") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read: {err.strerror}") from err
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {len(raw)} bytes is larger than the 1 MiB a config may have")
    doc = load_yaml(raw, str(path))
    if doc is None:
        raise ConfigError(f"{path}:1:1: the file is empty", hint="start with 'version: 1'")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}:1:1: the top level must be a mapping of keys, got {type(doc).__name__}",
                          hint="start with 'version: 1'")

    try:
        config = Config.model_validate(plain_data(doc))
    except ValidationError as err:
        lines = [_format_pydantic_error(path, doc, e) for e in err.errors()]
        raise ConfigError("\n".join(lines)) from None
    found = problems(config)
    for check in checks:
        found += check(config)
    if check_paths:
        from mlops_ci.config.paths import path_problems

        found += path_problems(config, path.resolve().parent)
    if found:
        lines = []
        for p in found:
            where = position(path, doc, p.loc)
            lines.append(f"{where}: {_dotted(p.loc)}: {p.message}" + (f" (fix: {p.hint})" if p.hint else ""))
        raise ConfigError("\n".join(lines))
    return LoadedConfig(config=config, path=path.resolve())


def plain_data(node: Any) -> Any:
    """ruamel's commented containers and scalar types as plain Python values."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, (int, float, bool)) else k: plain_data(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain_data(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def position(path: Path, doc: Any, loc: tuple) -> str:
    """file:line:column of the deepest part of ``loc`` present in the document."""
    line, col = 0, 0
    node = doc
    for part in loc:
        if isinstance(node, dict) and part in node:
            try:
                line, col = node.lc.key(part)
            except (AttributeError, KeyError, TypeError):
                pass
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            try:
                line, col = node.lc.item(part)
            except (AttributeError, KeyError, TypeError):
                pass
            node = node[part]
        else:
            break
    return f"{path}:{line + 1}:{col + 1}"


def _model_at(loc: tuple) -> Any:
    """The schema type (a model, or a plain type) of the value at ``loc``; None if unknown."""
    model: Any = Config
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = _field_of(model, part)
            if field is None:
                return None
            model = field.annotation
        elif typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]
        elif typing.get_origin(model) is list and isinstance(part, int):  # an item of a list (rollout steps)
            model = typing.get_args(model)[0]
        else:
            return None
        # unwrap Optional[...] / X | None / Annotated[...]
        while typing.get_origin(model) in (typing.Union, types.UnionType, typing.Annotated):
            args = [a for a in typing.get_args(model) if a is not type(None)]
            model = args[0]
    return model


def _field_of(model: type[BaseModel], key: Any) -> FieldInfo | None:
    return model.model_fields.get(key) or next((f for f in model.model_fields.values() if f.alias == key), None)


def _union_at(loc: tuple) -> list[type[BaseModel]]:
    """The models a union of models at ``loc`` offers (``serving``: one per kind); [] otherwise."""
    parent = _model_at(loc[:-1]) if loc else None
    field = _field_of(parent, loc[-1]) if isinstance(parent, type) and issubclass(parent, BaseModel) else None
    annotation = field.annotation if field is not None else None
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return []
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    while members and typing.get_origin(members[0]) is typing.Annotated:
        members = [typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m for m in members]
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def _chosen(models: list[type[BaseModel]], node: Any) -> type[BaseModel] | None:
    """Of the union's models, the one the mapping ``node`` selects by its ``kind`` (its default when
    it names none), if any."""
    kind = node.get("kind") if isinstance(node, dict) else None
    for model in models:
        field = model.model_fields.get("kind")
        if field is None:
            continue
        accepted = typing.get_args(field.annotation) or (field.default,)
        if (kind in accepted) if kind is not None else (field.default is not PydanticUndefined
                                                         and field.default is not None):
            return model
    return None


def _allowed_keys(loc: tuple, doc: Any = None) -> list[str]:
    """The keys the schema accepts in the mapping at ``loc`` (for 'did you mean'); for a union of
    models, those of the one the mapping's ``kind`` selects."""
    model = _model_at(loc)
    union = _union_at(loc)
    if union:
        model = _chosen(union, _node_at(doc, loc)) or model
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _node_at(doc: Any, loc: tuple) -> Any:
    node = doc
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _number_example(loc: tuple, whole: bool) -> str:
    """A number the setting at ``loc`` accepts: its default, else 2 / 0.75 moved inside its bounds."""
    parent = _model_at(loc[:-1]) if loc else None
    field = _field_of(parent, loc[-1]) if isinstance(parent, type) and issubclass(parent, BaseModel) else None
    default = field.default if field is not None else None
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return str(default)
    value: float = 2 if whole else 0.75
    for bound in field.metadata if field is not None else ():
        if getattr(bound, "ge", None) is not None:
            value = max(value, bound.ge)
        if getattr(bound, "gt", None) is not None and value <= bound.gt:
            value = bound.gt + 1 if whole else bound.gt + 0.5
        if getattr(bound, "le", None) is not None:
            value = min(value, bound.le)
        if getattr(bound, "lt", None) is not None and value >= bound.lt:
            value = bound.lt - 1 if whole else bound.lt / 2
    return str(int(value) if whole else value)


def _format_pydantic_error(path: Path, doc: Any, error: dict) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    where = position(path, doc, loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1], doc)
        close = difflib.get_close_matches(key, allowed, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
        return f"{where}: unknown key {_dotted(loc)} (fix: {fix})"
    if kind == "missing":
        parent = _dotted(loc[:-1])
        return f"{where}: {_dotted(loc)} is required (fix: add '{loc[-1]}:' under {parent})"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    msg = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
        return f"{where}: {_dotted(loc)}: {msg}"
    if kind.startswith(("int", "float")):
        fix = f"write a {'whole ' if kind.startswith('int') else ''}number such as " \
              f"{_number_example(loc, kind.startswith('int'))}"
    else:
        fix = next((hint for prefix, hint in _FIXES if kind.startswith(prefix)), None)
    return f"{where}: {_dotted(loc)}: {msg}, got {shown}" + (f" (fix: {fix})" if fix else "")


_FIXES = (
    ("bool", "write true or false"),
    ("string", "write text, quoted if it looks like a number"),
    ("list", "write a list, e.g. [a, b]"),
    ("dict", "write a mapping of keys to values"),
    ("model", "write a mapping of keys to values"),
    ("literal", "use one of the values listed"),
    ("greater_than", "use a larger value"),
    ("less_than", "use a smaller value"),
    ("too_short", "add at least one entry"),
)
