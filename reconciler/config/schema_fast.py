"""A yes/no answer to "is this document valid against the JSON Schema?", fast.

jsonschema re-walks the schema for every value (a ``$ref`` lookup and a validator object
per level): 2.7 s for a 16,000-registration configuration. This module compiles the same
schema (``catalog.schema()``, still the single source of truth) into plain Python closures
once, which answer only valid or not; :mod:`schema_check` asks jsonschema for the located
messages only when the answer is no, so every message still comes from jsonschema.

The common keywords of draft 2020-12 are compiled; a subschema holding any other keyword
is handed to jsonschema itself (its validator evolved to that subschema), so a keyword
this module does not know can only make it slower, never more lenient. A test checks
both agree on generated documents.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from itertools import pairwise
from typing import Any
from urllib.parse import unquote

Check = Callable[[Any], bool]

# Keywords that never make a document invalid (annotations and containers).
_ANNOTATIONS = frozenset(
    {
        "$comment",
        "$defs",
        "$schema",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
        "default",
        "definitions",
        "deprecated",
        "description",
        "examples",
        "format",  # an annotation unless a format checker is given, and none is
        "readOnly",
        "title",
        "writeOnly",
    }
)
_COMPILED = frozenset(
    {
        "$ref",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "not",
        "oneOf",
        "pattern",
        "patternProperties",
        "properties",
        "propertyNames",
        "required",
        "type",
        "uniqueItems",
    }
)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: Mapping[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": _number,
    "integer": lambda v: _number(v) and (isinstance(v, int) or float(v).is_integer()),
}


def equal(one: Any, two: Any) -> bool:
    """JSON equality as jsonschema's ``const`` and ``enum`` see it: ``true`` is not ``1``,
    ``1.0`` is ``1``."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(equal(one[k], two[k]) for k in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    try:
        return bool(one == two)
    except Exception:  # an odd YAML value that refuses comparison is unequal
        return False


_TRUE, _FALSE = object(), object()  # booleans, made unequal to 1 and 0 for uniqueItems


def _unbool(value: Any) -> Any:
    return _TRUE if value is True else _FALSE if value is False else value


def unique(items: list[Any]) -> bool:
    """``uniqueItems`` as jsonschema decides it: sorted neighbours compared, or every pair
    when the items do not sort (the same answer, NaN included)."""
    try:
        ordered = sorted(_unbool(item) for item in items)
        return not any(equal(a, b) for a, b in pairwise(ordered))
    except (NotImplementedError, TypeError):
        seen: list[Any] = []
        for item in map(_unbool, items):
            if any(equal(other, item) for other in seen):
                return False
            seen.append(item)
        return True


class SchemaCompiler:
    """Compiles one root schema; ``fallback(subschema)`` builds the jsonschema check used
    for a subschema with a keyword not compiled here."""

    def __init__(self, root: Any, fallback: Callable[[Any], Check]) -> None:
        self.root = root
        self._fallback = fallback
        self._refs: dict[str, list[Check]] = {}  # pointer -> its check (a cell: recursion)

    def compile(self, schema: Any) -> Check:
        if schema is True or (isinstance(schema, Mapping) and not schema):
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, Mapping):
            raise ValueError(f"not a schema: {schema!r}")
        unknown = set(schema) - _ANNOTATIONS - _COMPILED
        if schema is self.root:
            unknown.discard("$id")  # the root's base URI; local references ignore it
        if unknown:
            return self._fallback(schema)
        found = [self._keyword(schema, word) for word in schema if word in _COMPILED]
        checks = [c for c in found if c is not None]
        if len(checks) == 1:
            return checks[0]
        return lambda value: all(check(value) for check in checks)

    def _keyword(self, schema: Mapping[str, Any], word: str) -> Check | None:
        arg = schema[word]
        if word == "type":
            wanted = [_TYPES[t] for t in (arg if isinstance(arg, list) else [arg])]
            if len(wanted) == 1:
                return wanted[0]
            return lambda value: any(check(value) for check in wanted)
        if word == "const":
            return lambda value: equal(value, arg)
        if word == "enum":
            return _enum(list(arg))
        if word == "$ref":
            return self._ref(arg)
        if word in ("properties", "patternProperties", "additionalProperties"):
            # Compiled once, from the three together (they depend on each other).
            return self._object(schema) if word == _first_object_word(schema) else None
        if word == "required":
            names = list(arg)
            return lambda value: not isinstance(value, dict) or all(n in value for n in names)
        if word == "propertyNames":
            check = self.compile(arg)
            return lambda value: not isinstance(value, dict) or all(check(k) for k in value)
        if word in _SIZED:
            return _bound(_SIZED[word], word.startswith("min"), arg)
        if word == "pattern":
            search = re.compile(arg).search
            return lambda value: not isinstance(value, str) or search(value) is not None
        if word in _NUMBER_BOUNDS:
            return _number_bound(word, arg)
        if word == "uniqueItems":
            return (lambda value: not isinstance(value, list) or unique(value)) if arg else None
        if word == "items":
            check = self.compile(arg)
            return lambda value: not isinstance(value, list) or all(check(i) for i in value)
        return self._combinator(word, arg)

    def _combinator(self, word: str, arg: Any) -> Check:
        if word == "not":
            negated = self.compile(arg)
            return lambda value: not negated(value)
        parts = [self.compile(sub) for sub in arg]
        if word == "allOf":
            return lambda value: all(check(value) for check in parts)
        if word == "anyOf":
            return lambda value: any(check(value) for check in parts)
        return lambda value: sum(1 for check in parts if check(value)) == 1  # oneOf

    def _object(self, schema: Mapping[str, Any]) -> Check:
        properties = {k: self.compile(v) for k, v in schema.get("properties", {}).items()}
        patterns = [
            (re.compile(p).search, self.compile(v))
            for p, v in schema.get("patternProperties", {}).items()
        ]
        extra = schema.get("additionalProperties", True)
        closed = extra is False
        additional = None if extra is True or closed else self.compile(extra)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                known = properties.get(key)
                matched = False
                if known is not None:
                    if not known(item):
                        return False
                    matched = True
                for search, sub in patterns:
                    if search(key) is not None:
                        if not sub(item):
                            return False
                        matched = True
                if not matched:
                    if closed:
                        return False
                    if additional is not None and not additional(item):
                        return False
            return True

        return check

    def _ref(self, ref: str) -> Check:
        cell = self._refs.get(ref)
        if cell is None:
            if not ref.startswith("#"):
                return self._fallback({"$ref": ref})
            try:
                target = _resolve_pointer(self.root, ref[1:])
            except (KeyError, IndexError, ValueError, TypeError):
                return self._fallback({"$ref": ref})
            cell = self._refs[ref] = []
            cell.append(self.compile(target))
        return lambda value: cell[0](value)


def _enum(allowed: list[Any]) -> Check:
    # A string equals only a string: names (services, accounts) are a set lookup.
    strings = frozenset(v for v in allowed if isinstance(v, str))
    return lambda value: (
        value in strings if isinstance(value, str) else any(equal(value, each) for each in allowed)
    )


def _first_object_word(schema: Mapping[str, Any]) -> str:
    words = ("properties", "patternProperties", "additionalProperties")
    return next(w for w in schema if w in words)


# Size bounds: the type each applies to (its size is its len()).
_SIZED: Mapping[str, type[Sized]] = {
    "minProperties": dict,
    "maxProperties": dict,
    "minLength": str,
    "maxLength": str,
    "minItems": list,
    "maxItems": list,
}


def _bound(kind: type[Sized], minimum: bool, limit: int) -> Check:
    if minimum:
        return lambda value: not isinstance(value, kind) or len(value) >= limit
    return lambda value: not isinstance(value, kind) or len(value) <= limit


_NUMBER_BOUNDS: Mapping[str, Callable[[Any, Any], bool]] = {
    "minimum": operator.ge,
    "maximum": operator.le,
    "exclusiveMinimum": operator.gt,
    "exclusiveMaximum": operator.lt,
}


def _number_bound(word: str, limit: float) -> Check:
    op = _NUMBER_BOUNDS[word]
    # NaN compares false both ways, so jsonschema finds no violation in it.
    return lambda value: not _number(value) or value != value or op(value, limit)


def _resolve_pointer(root: Any, pointer: str) -> Any:
    """The subschema a local JSON pointer (``/$defs/url``) names."""
    node = root
    for raw in pointer.split("/")[1:] if pointer else []:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, Sequence) else node[part]
    return node
