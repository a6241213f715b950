"""A YAML loader that remembers where every key and value came from.

PyYAML's composer gives a node graph with marks; this module walks that graph itself
(instead of PyYAML's constructor) so it can record the start mark of every key and
value by JSON path, refuse duplicate and non-string keys, and bound alias expansion.
Only plain values come out: dict, list, str, int, float, bool, None (and the odd date
YAML reads implicitly, which the schema then rejects). Explicit tags on scalars
(``!!int x``, ``!!str 5``, ``!custom``) are refused: they can only make a value something
other than what it reads as, and some of them crash PyYAML's constructors.
"""

from __future__ import annotations

import ast
import gc
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.core import escape
from reconciler.core.errors import Location, Problem

# The limits guard against expansion, not honest size: a 5,000-account file is 7 MB.
MAX_FILE_BYTES = 64 * 1024 * 1024
# Values aliases may add (re-visits of a node already walked), over the whole file: at
# least MAX_NODES, and up to ALIAS_FACTOR times the nodes written in the file, so one
# shared callbacks map merged into every account of a large fleet is fine while a
# billion-laughs file (a few dozen nodes that expand exponentially) is refused at once.
MAX_NODES = 20_000
ALIAS_FACTOR = 16
# PyYAML's scanner is quadratic in flow-collection depth, so refuse deep [ / { nesting
# before it starts; real configurations nest a handful of levels.
MAX_FLOW_DEPTH = 100

JsonPath = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
# The tag a scalar's text resolves to, as PyYAML's loaders resolve it (untyped in stubs).
_resolve = cast(
    Callable[[type[Node], str, tuple[bool, bool]], str], yaml.resolver.Resolver().resolve
)
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
# First characters of a plain scalar that some implicit resolver looks at (int, bool, null,
# ...): a plain scalar starting with any other character resolves to a string.
_IMPLICIT_FIRST = frozenset(yaml.resolver.Resolver.yaml_implicit_resolvers)
_QUOTED_STYLES = frozenset("'\"|>")
_REPR_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")  # a Python repr of a string
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# What YAML makes of an unquoted key, in words, by resolved tag.
_TAG_WORDS = {
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    _NULL_TAG: "null",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
}


def format_json_path(path: JsonPath) -> str:
    """``("accounts", "0252-1", "callbacks", "DeviceUsage")`` -> ``$.accounts['0252-1']...``.

    The result is display text: a key is escaped as :func:`escape.text` shows it (plus
    ``\\'`` for its quote), so a key holding a newline or an escape sequence stays one
    visible line in an error.
    """
    out = ["$"]
    for segment in path:
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif _IDENTIFIER.fullmatch(segment):  # not match: "$" allows a final "\n"
            out.append(f".{segment}")
        else:
            escaped = escape.text(segment).replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


class _Marks(Mapping[JsonPath, Location]):
    """Positions by JSON path, kept as PyYAML's marks and made Locations when asked:
    a large file has tens of thousands of them and only a few are ever looked up."""

    def __init__(self, path: str, marks: dict[JsonPath, yaml.Mark]) -> None:
        self._path = path
        self._marks = marks

    def __getitem__(self, key: JsonPath) -> Location:
        return _location(self._path, self._marks[key])

    def get(self, key: JsonPath, default: Any = None) -> Any:
        mark = self._marks.get(key)
        return default if mark is None else _location(self._path, mark)

    def __contains__(self, key: object) -> bool:
        return key in self._marks

    def __iter__(self) -> Iterator[JsonPath]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)


@dataclass(frozen=True)
class YamlDoc:
    """One parsed file: plain data plus the 1-based position of every key and value."""

    path: str
    data: Any
    value_marks: Mapping[JsonPath, Location] = field(repr=False)
    key_marks: Mapping[JsonPath, Location] = field(repr=False)
    # Keys YAML read as non-strings (already reported), kept under their source text.
    coerced_keys: frozenset[JsonPath] = frozenset()
    # Values that could not be read (already reported), kept as None: not checked again.
    refused_values: frozenset[JsonPath] = frozenset()

    def value_at(self, path: JsonPath) -> Location:
        """Where the value at ``path`` starts (or its nearest recorded ancestor)."""
        return self._lookup(self.value_marks, path)

    def key_at(self, path: JsonPath) -> Location:
        """Where the key naming ``path`` starts; the value's position if it has no key."""
        if path in self.key_marks:
            return self.key_marks[path]
        return self.value_at(path)

    def _lookup(self, marks: Mapping[JsonPath, Location], path: JsonPath) -> Location:
        for end in range(len(path), -1, -1):
            found = marks.get(path[:end])
            if found is not None:
                return found
        return Location(self.path, 1, 1)


@dataclass(frozen=True)
class ParseResult:
    """``doc`` is None when the file could not be turned into data at all."""

    doc: YamlDoc | None
    problems: tuple[Problem, ...]


class _Abort(Exception):
    """Stops the walk: the file cannot be turned into data (bomb, cycle)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def read_yaml_file(path: str) -> ParseResult:
    """Read and parse one file, refusing files over :data:`MAX_FILE_BYTES` unparsed."""
    limit = MAX_FILE_BYTES
    too_big = f"the limit is {limit // (1024 * 1024)} MiB"
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:  # a regular file: refused before a byte is read
                return _fail(path, f"file is {size} bytes; {too_big}")
            raw = handle.read(limit + 1)
            if len(raw) > limit:  # a pipe or device, or a file that grew
                return _fail(path, f"file is more than {limit} bytes; {too_big}")
    except OSError as exc:
        return _fail(path, f"cannot read configuration: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _fail(path, f"file is not valid UTF-8 (byte {exc.start})")
    return parse_yaml(text, path=path)


def parse_yaml(
    text: str, *, path: str, max_nodes: int = MAX_NODES, alias_factor: int = ALIAS_FACTOR
) -> ParseResult:
    """Parse one YAML document into plain data with marks; every problem is returned."""
    too_deep = _flow_too_deep(text)
    if too_deep is not None:
        line, column = _line_col(text, too_deep)
        message = f"the YAML is nested too deeply (more than {MAX_FLOW_DEPTH} levels)"
        return ParseResult(None, (Problem(Location(path, line, column), "$", message),))
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _location(path, mark) if mark is not None else Location(path, 0, 0)
        return ParseResult(None, (Problem(where, "$", _yaml_message(exc)),))
    except yaml.reader.ReaderError as exc:
        line, column = _line_col(text, exc.position)
        return ParseResult(None, (Problem(Location(path, line, column), "$", exc.reason),))
    except yaml.YAMLError as exc:  # any other PyYAML failure, still one line
        return _fail(path, str(exc).splitlines()[0])
    except RecursionError:
        return _fail(path, "the YAML is nested too deeply")
    if root is None:
        return _fail(path, "the file is empty; expected a mapping with version and accounts")
    walker = _Walker(path, root, max_nodes, alias_factor)
    try:
        with collector_paused():
            data = walker.value(root, ())
    except _Abort as stop:
        return ParseResult(None, (stop.problem,))
    except RecursionError:
        return _fail(path, "the YAML is nested too deeply")
    doc = YamlDoc(
        path=path,
        data=data,
        value_marks=_Marks(path, walker.value_marks),
        key_marks=_Marks(path, walker.key_marks),
        coerced_keys=frozenset(walker.coerced_keys),
        refused_values=frozenset(walker.refused_values),
    )
    return ParseResult(doc, tuple(walker.problems))


def _compose(text: str) -> yaml.Node | None:
    """The node graph, with libyaml's fast parser when PyYAML has it.

    A document libyaml refuses is parsed again by the pure-Python parser, so error
    messages are the same on every machine, with or without libyaml.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            with collector_paused():
                return yaml.compose(text, Loader=fast)
        except (yaml.YAMLError, RecursionError):
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector paused while a graph of acyclic objects is built: tens of
    thousands of new objects would trigger full collections that find nothing. Nested
    pauses leave it to the outermost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem = _unrepr(exc.problem or exc.context or "invalid YAML")
    # "but found another document" only makes sense after its context.
    if exc.context and problem.startswith("but "):
        return f"{_unrepr(exc.context)} {problem}"
    return problem


def _unrepr(message: str) -> str:
    """PyYAML quotes characters with ``repr`` ('\\t'); problems hold raw text and are
    escaped once when shown, so turn them back into the characters they stand for."""

    def raw(match: re.Match[str]) -> str:
        try:
            value = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError):
            return match.group(0)
        return f"'{value}'" if isinstance(value, str) else match.group(0)

    return _REPR_STRING.sub(raw, message)


def _flow_too_deep(text: str) -> int | None:
    """Offset of the first ``[``/``{`` nested deeper than :data:`MAX_FLOW_DEPTH`, roughly.

    Skips quoted strings and comments; anything it misreads is still caught, more
    slowly, by the RecursionError guard around composing.
    """
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return None
    depth = 0
    quote = ""
    previous = "\n"
    index = 0
    size = len(text)
    while index < size:
        char = text[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = ""
        elif char == "#" and previous in " \t\n":
            newline = text.find("\n", index)
            index = size if newline < 0 else newline
            char = "\n"
        elif char in "'\"" and previous in " \t\n[{,:":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                return index
        elif char in "]}":
            depth = max(0, depth - 1)
        previous = char
        index += 1
    return None


def _fail(path: str, message: str) -> ParseResult:
    return ParseResult(None, (Problem(Location(path, 0, 0), "$", message),))


def _location(path: str, mark: yaml.Mark) -> Location:
    return Location(path, mark.line + 1, mark.column + 1)


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


class _Walker:
    """Turns a node graph into plain values, recording marks and structural problems."""

    def __init__(self, path: str, root: Node, max_nodes: int, alias_factor: int) -> None:
        self.path = path
        self._root = root
        self.max_nodes = max_nodes  # the alias budget: grows once to the scaled one
        self._alias_factor = alias_factor
        self._scaled = False
        self.expanded = 0
        self._visited: set[int] = set()
        self.value_marks: dict[JsonPath, yaml.Mark] = {}
        self.key_marks: dict[JsonPath, yaml.Mark] = {}
        self.problems: list[Problem] = []
        self.coerced_keys: set[JsonPath] = set()
        self.refused_values: set[JsonPath] = set()
        # An aliased node is walked once per use; report what is wrong in it once.
        self._reported: set[tuple[int, int, str]] = set()
        self._open: set[int] = set()
        self._constructor = SafeConstructor()

    def value(self, node: Node, path: JsonPath, *, at: yaml.Mark | None = None) -> Any:
        # Only re-visits through aliases count: first visits are bounded by the file
        # size, and a large plain file must not trip the alias-bomb guard.
        key = id(node)
        if key in self._visited:
            self.expanded += 1
        else:
            self._visited.add(key)
        if self.expanded > self.max_nodes and not self._scale_budget():
            raise _Abort(
                Problem(
                    self._loc(node),
                    "$",
                    f"aliases expand to more than {self.max_nodes} values; "
                    "refusing to expand (alias bomb?)",
                )
            )
        self.value_marks[path] = at or node.start_mark
        if isinstance(node, ScalarNode):
            if _surely_str(node):
                return node.value  # what SafeConstructor makes of it, without its overhead
            return self._scalar(node, path)
        if id(node) in self._open:
            raise _Abort(
                Problem(self._loc(node), format_json_path(path), "an alias refers to itself")
            )
        if node.tag not in _COLLECTION_TAGS:  # !!python/object, !!set, !custom: no
            self._report(node, path, f"unsupported YAML tag '{node.tag}' on a collection")
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._open.discard(id(node))
        raise _Abort(Problem(self._loc(node), format_json_path(path), "unsupported YAML node"))

    def _scale_budget(self) -> bool:
        """Raise the alias budget to ``alias_factor`` x the file's own nodes, once, when
        the floor is first exceeded (files without many aliases never count); True if
        that leaves room."""
        if self._scaled:
            return False
        self._scaled = True
        self.max_nodes = max(self.max_nodes, self._alias_factor * _count_nodes(self._root))
        return self.expanded <= self.max_nodes

    def _scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        tag = _explicit_tag(node)
        if tag is not None:
            return self._refuse(node, path, _explicit_tag_message(tag))
        try:
            return self._constructor.construct_object(node)
        except yaml.MarkedYAMLError as exc:
            return self._refuse(node, path, exc.problem or "cannot read this value")
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # An implicit value that only looks like one (2024-13-45 as a date).
            words = _TAG_WORDS.get(node.tag, "a value")
            return self._refuse(node, path, f"cannot read this value as {words}; quote it")

    def _refuse(self, node: ScalarNode, path: JsonPath, message: str) -> None:
        self._report(node, path, message)
        self.refused_values.add(path)

    def _mapping(self, node: MappingNode, path: JsonPath) -> dict[str, Any]:
        pairs: list[tuple[Node, Node]] = []
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
            else:
                pairs.append((key_node, value_node))
        # Merged keys first, the first source last, so that explicit keys and then
        # earlier sources win, for values and marks alike (YAML merge-key order).
        merged: dict[str, Any] = {}
        for source in reversed([s for m in merges for s in _merge_sources(m)]):
            if isinstance(source, MappingNode):
                merged.update(self.value(source, path))
            else:
                self._report(source, path, "a merge key '<<' takes a mapping or a list of mappings")
        explicit: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in pairs:
            key = self._key(key_node, path)
            if key is None:
                continue
            key_mark = key_node.start_mark
            if key in first_line:
                self._report(
                    key_node,
                    (*path, key),
                    f"duplicate key '{key}' (first defined at line {first_line[key]})",
                )
                continue
            first_line[key] = key_mark.line + 1
            key_path = (*path, key)
            self.key_marks[key_path] = key_mark
            # An empty value's own mark points at whatever follows; its key is clearer.
            at = key_mark if _is_empty_scalar(value_node) else None
            explicit[key] = self.value(value_node, key_path, at=at)
        if merges:
            self.value_marks[path] = node.start_mark
        return {**merged, **explicit}

    def _key(self, node: Node, path: JsonPath) -> str | None:
        """The key as a string, or None (reported) when it cannot be one."""
        if not isinstance(node, ScalarNode):
            kind = "a list" if isinstance(node, SequenceNode) else "a mapping"
            self._report(node, path, f"keys must be strings, not {kind}")
            return None
        raw = str(node.value)
        if _surely_str(node):
            return raw
        tag = _explicit_tag(node)
        if tag is not None:
            self._report(node, (*path, raw), _explicit_tag_message(tag))
            self.coerced_keys.add((*path, raw))
            return raw  # keep checking the rest as if it had been quoted
        if node.tag == _STR_TAG:
            return raw
        words = _TAG_WORDS.get(node.tag, f"YAML type {node.tag}")
        shown = raw if raw else "(empty)"
        quoted = '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if path == ("accounts",):
            message = f"account name {shown} is read by YAML as {words}; quote it: {quoted}"
        else:
            message = (
                f"key {shown} is read by YAML as {words}; keys must be strings: quote it: {quoted}"
            )
        self._report(node, (*path, raw), message)
        self.coerced_keys.add((*path, raw))
        return raw  # keep checking the rest as if it had been quoted

    def _report(self, node: Node, path: JsonPath, message: str) -> None:
        loc = self._loc(node)
        token = (loc.line, loc.column, message)
        if token in self._reported:
            return
        self._reported.add(token)
        self.problems.append(Problem(loc, format_json_path(path), message))

    def _loc(self, node: Node) -> Location:
        return _location(self.path, node.start_mark)


def _count_nodes(root: Node) -> int:
    """How many distinct nodes the graph has: what the file itself writes out."""
    seen = {id(root)}
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, ScalarNode):
            continue
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, MappingNode)
            else list(node.value)
        )
        for child in children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def _surely_str(node: ScalarNode) -> bool:
    """Whether a scalar reads as a string for certain, without trying every implicit
    resolver: tagged str and quoted, or plain text starting with a character no resolver
    looks at (most text does)."""
    if node.tag != _STR_TAG:
        return False
    text: str = node.value
    return node.style in _QUOTED_STYLES or (bool(text) and text[0] not in _IMPLICIT_FIRST)


def _explicit_tag(node: ScalarNode) -> str | None:
    """The tag written on ``node`` when it differs from what its text resolves to.

    The composer keeps no record of whether a tag was written, so a tag that changes
    nothing (``!!int 5``) passes: it is harmless. Plain scalars resolve by their text,
    quoted and block ones to strings.
    """
    implicit = (not node.style, bool(node.style))
    if node.tag == _resolve(ScalarNode, node.value, implicit):
        return None
    return str(node.tag)


def _explicit_tag_message(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag
    return f"explicit YAML tag {shown} is not supported; remove it (to write text, quote it)"


def _is_empty_scalar(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.value == "" and not node.style


def _merge_sources(node: Node) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else [node]
