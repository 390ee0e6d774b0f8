"""GitHub Actions expressions (``${{ ... }}``), for the forms our workflows and action.yml use.

Literals (``'text'`` with ``''`` for a quote, numbers, ``true``, ``false``, ``null``), property
access (``github.event.pull_request.number``; names may hold ``-``), ``!``, ``==``, ``!=``,
``&&``, ``||`` (returning an operand, as GitHub does), parentheses, and the functions
``format``, ``success``, ``failure``, ``cancelled``, ``always``. Anything else (another
function, ``[index]``, ``<``, ``*`` filters, an unknown context) raises :class:`ExpressionError`,
so a workflow change this interpreter cannot follow fails the test instead of being skipped.

Semantics follow GitHub's documentation: strings compare case-insensitively, operands of
different types are compared as numbers, ``null``/``false``/``0``/``''`` are falsy, a missing
property is ``null``, and property names are case-insensitive.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "ExpressionError",
    "condition",
    "evaluate",
    "expressions_in",
    "interpolate",
    "parse",
    "to_string",
    "truthy",
]

STATUS_FUNCTIONS = ("success", "failure", "cancelled", "always")
FUNCTIONS = ("format", *STATUS_FUNCTIONS)
_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<op>==|!=|&&|\|\||!|\(|\)|,|\.)
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
)""", re.VERBOSE)
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class ExpressionError(AssertionError):
    """An expression this interpreter does not understand: extend it, do not skip the step."""


# -- parsing ------------------------------------------------------------------------------------------

def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in the expression {text!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """or := and ('||' and)* ; and := eq ('&&' eq)* ; eq := unary (('=='|'!=') unary)? ;
    unary := '!' unary | postfix ; postfix := primary ('.' name)* ; primary := literal | name ['(' args ')'] | '(' or ')'"""

    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i = text, _tokens(text), 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ExpressionError(f"expected {value or 'more'} in {self.text!r}, got {tok}")
        self.i += 1
        return tok

    def parse(self):
        node = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return node

    def or_(self):
        node = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self):
        node = self.eq()
        while self.peek() == ("op", "&&"):
            self.take()
            node = ("and", node, self.eq())
        return node

    def eq(self):
        node = self.unary()
        if self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            node = (op, node, self.unary())
        return node

    def unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while self.peek() == ("op", "."):
            self.take()
            kind, name = self.take()
            if kind != "name":
                raise ExpressionError(f"expected a property name after '.' in {self.text!r}")
            node = ("prop", node, name)
        return node

    def primary(self):
        kind, value = self.take()
        if kind == "str":
            return ("lit", value[1:-1].replace("''", "'"))
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if (kind, value) == ("op", "("):
            node = self.or_()
            self.take(")")
            return node
        if kind != "name":
            raise ExpressionError(f"unexpected {value!r} in {self.text!r}")
        if value in ("true", "false", "null"):
            return ("lit", {"true": True, "false": False, "null": None}[value])
        if self.peek() == ("op", "("):
            if value not in FUNCTIONS:
                raise ExpressionError(f"function {value}() is not supported (in {self.text!r})")
            self.take()
            args = []
            while self.peek() != ("op", ")"):
                args.append(self.or_())
                if self.peek() == ("op", ","):
                    self.take()
            self.take(")")
            return ("call", value, args)
        return ("ctx", value)


def parse(text: str):
    return _Parser(text).parse()


def contexts_of(node) -> set[str]:
    """The context names an expression reads (``github``, ``steps``, ...)."""
    if node[0] == "ctx":
        return {node[1]}
    out: set[str] = set()
    for child in node[1:]:
        if isinstance(child, tuple):
            out |= contexts_of(child)
        elif isinstance(child, list):
            for c in child:
                out |= contexts_of(c)
    return out


def _uses_status(node) -> bool:
    if node[0] == "call" and node[1] in STATUS_FUNCTIONS:
        return True
    return any(_uses_status(c) for c in node[1:] if isinstance(c, tuple)) or any(
        _uses_status(c) for part in node[1:] if isinstance(part, list) for c in part)


# -- values ---------------------------------------------------------------------------------------------

def truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "")


def to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value)  # an object or array, as GitHub prints them


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if type(a) is type(b) and not isinstance(a, (dict, list)):
        return a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return a is b
    return _number(a) == _number(b)


def _prop(obj: Any, name: str) -> Any:
    if not isinstance(obj, Mapping):
        return None
    if name in obj:
        return obj[name]
    for key, value in obj.items():
        if isinstance(key, str) and key.casefold() == name.casefold():
            return value
    return None


def _format(template: str, *args: Any) -> str:
    def repl(m: re.Match) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        index = int(m.group(1))
        if index >= len(args):
            raise ExpressionError(f"format({template!r}) has no argument {index}")
        return to_string(args[index])

    return re.sub(r"\{\{|\}\}|\{(\d+)\}", repl, template)


def evaluate(node, contexts: Mapping[str, Any], status: Callable[[str], bool] | None = None) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "ctx":
        if node[1] not in contexts:
            raise ExpressionError(f"context {node[1]!r} is not available here (have: {', '.join(sorted(contexts))})")
        return contexts[node[1]]
    if kind == "prop":
        return _prop(evaluate(node[1], contexts, status), node[2])
    if kind == "not":
        return not truthy(evaluate(node[1], contexts, status))
    if kind == "and":
        left = evaluate(node[1], contexts, status)
        return evaluate(node[2], contexts, status) if truthy(left) else left
    if kind == "or":
        left = evaluate(node[1], contexts, status)
        return left if truthy(left) else evaluate(node[2], contexts, status)
    if kind in ("==", "!="):
        same = _equal(evaluate(node[1], contexts, status), evaluate(node[2], contexts, status))
        return same if kind == "==" else not same
    if kind == "call":
        name, args = node[1], [evaluate(a, contexts, status) for a in node[2]]
        if name == "format":
            if not args or not isinstance(args[0], str):
                raise ExpressionError("format() needs a string template first")
            return _format(*args)
        if args:
            raise ExpressionError(f"{name}() takes no arguments")
        if status is None:
            raise ExpressionError(f"{name}() is only available in an if: condition")
        return status(name)
    raise ExpressionError(f"cannot evaluate {node!r}")


# -- templates and conditions ------------------------------------------------------------------------------

def interpolate(value: Any, contexts: Mapping[str, Any]) -> Any:
    """``value`` with every ``${{ }}`` evaluated: a string that is one expression keeps its value's type."""
    if not isinstance(value, str):
        return value
    whole = _TEMPLATE.fullmatch(value.strip())
    if whole and value.strip().count("${{") == 1:
        return evaluate(parse(whole.group(1)), contexts)
    return _TEMPLATE.sub(lambda m: to_string(evaluate(parse(m.group(1)), contexts)), value)


def condition(text: Any, contexts: Mapping[str, Any], status: Callable[[str], bool]) -> bool:
    """An ``if:`` (with or without ``${{ }}``); without a status function it means ``success() && (...)``."""
    if text is None:
        return status("success")
    if isinstance(text, bool):
        return status("success") and text
    source = str(text).strip()
    whole = _TEMPLATE.fullmatch(source)
    if whole:
        source = whole.group(1)
    elif "${{" in source:
        raise ExpressionError(f"an if: mixing text and ${{{{ }}}} is not supported: {text!r}")
    node = parse(source)
    if not _uses_status(node):
        node = ("and", ("call", "success", []), node)
    return truthy(evaluate(node, contexts, status))


def expressions_in(obj: Any, path: str = "") -> list[tuple[str, str]]:
    """(where, expression) for every ``${{ }}`` and every ``if:`` below ``obj`` (a loaded YAML document)."""
    out: list[tuple[str, str]] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "if" and isinstance(value, str) and not _TEMPLATE.fullmatch(value.strip()):
                out.append((where, value))
            else:
                out += expressions_in(value, where)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            out += expressions_in(item, f"{path}[{i}]")
    elif isinstance(obj, str):
        out += [(path, m.group(1)) for m in _TEMPLATE.finditer(obj)]
    return out
