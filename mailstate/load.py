"""YAML files -> plain data with positions -> pydantic models; every problem as file:line:col.

Domain files arrive in pull requests, so this is the first trust boundary. The file is read
with libyaml's composer (fast, C) into nodes, and turned into plain data by our own small
constructor, which refuses what a domain file never needs: duplicate keys, anchors and aliases
(size blow-ups), custom tags, huge files. Nodes are kept so that any later error, from pydantic
or from a cross-object rule, can be pointed at the line and column it came from.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
# mailstate.yaml is the operator's (trusted) file, and an adopted server lists one kept home
# per mailbox in it: room for a large server's, still a bound.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_REPORTED = 100  # schema errors shown per file; the rest are counted


def _parser(pure: bool) -> YAML:
    """ruamel.yaml's safe parser: libyaml's (ruamel.yaml.clib) when installed and not `pure`,
    else the pure-Python one. Both give the same nodes; the tests run both."""
    yaml = YAML(typ="safe", pure=pure)
    yaml.max_depth = MAX_DEPTH + 1  # the pure composer's own guard; ours reports first
    return yaml


def has_c_parser() -> bool:
    """True when ruamel.yaml can use libyaml here (the optional ruamel.yaml.clib)."""
    return _parser(pure=False).Parser is not _parser(pure=True).Parser


Loc = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Issue:
    """One problem found in one file, with where it is and what to do."""

    path: str
    line: int | None
    column: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.severity}: {self.message}"
        # One issue, one line: a newline or control character from the input is shown escaped,
        # so that no file content can forge extra lines in CI output.
        return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class Problems(Exception):
    """Raised with every issue of a run, so that all are reported at once."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(map(str, issues)))
        self.issues = issues


@dataclass
class Document:
    """A loaded YAML file: its data, and its node tree to find positions."""

    path: str
    data: Any
    root: Node | None = field(repr=False, default=None)
    # mapping node -> its keys, built on first use: a file with many errors (60,000 unknown
    # keys) must not cost a scan of its mapping per error
    _index: dict[int, dict[str, tuple[Node, Node]]] = field(repr=False, default_factory=dict,
                                                           compare=False)

    def _keys(self, node: MappingNode) -> dict[str, tuple[Node, Node]]:
        keys = self._index.get(id(node))
        if keys is None:
            keys = {}
            for k, v in node.value:
                keys.setdefault(str(k.value), (k, v))
            self._index[id(node)] = keys
        return keys

    def where(self, loc: Loc) -> tuple[int | None, int | None]:
        """1-based line and column of the value at `loc` (or of the deepest part found)."""
        node = self.root
        if node is None:
            return (None, None)
        mark = key_mark = node.start_mark
        for part in loc:
            if part == "[key]":  # pydantic's marker for an error in a dict key
                mark = key_mark
                break
            if isinstance(node, MappingNode):
                match = self._keys(node).get(str(part))
                if match is None:
                    mark = key_mark  # a missing key: point at its parent's key
                    break
                key_mark, mark, node = match[0].start_mark, match[1].start_mark, match[1]
            elif (isinstance(node, SequenceNode) and isinstance(part, int)
                  and part < len(node.value)):
                node = node.value[part]
                mark = node.start_mark
            else:
                break
        return (mark.line + 1, mark.column + 1)

    def issue(self, loc: Loc, message: str, severity: str = "error") -> Issue:
        line, column = self.where(loc)
        return Issue(self.path, line, column, message, severity)


def _mark(path: str, node: Node) -> tuple[str, int, int]:
    return (path, node.start_mark.line + 1, node.start_mark.column + 1)


def _unsupported(tag: str) -> str:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    return f"the YAML tag {shown!r} is not supported here; write a plain value without a tag"


class _Constructor:
    """Nodes -> plain Python, refusing aliases, duplicate keys and unusual tags."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen: set[int] = set()
        self.issues: list[Issue] = []
        self.aliased = False  # report aliases once: a billion laughs is one mistake

    def fail(self, node: Node, message: str) -> None:
        self.issues.append(Issue(*_mark(self.path, node), message))

    def build(self, node: Node, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            self.fail(node, f"nested more than {MAX_DEPTH} levels deep")
            return None
        if id(node) in self.seen:
            if not self.aliased:
                self.fail(node, "YAML anchors and aliases (&name, *name) are not allowed in "
                                "mailstate files; write the value out")
            self.aliased = True
            return None
        self.seen.add(id(node))
        if isinstance(node, (MappingNode, SequenceNode)):
            expected = "map" if isinstance(node, MappingNode) else "seq"
            if node.tag != f"tag:yaml.org,2002:{expected}":
                self.fail(node, _unsupported(node.tag))
                return None
        if isinstance(node, MappingNode):
            return self._mapping(node, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, depth + 1) for item in node.value]
        return self._scalar(node)

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            tag = key_node.tag if isinstance(key_node, ScalarNode) else None  # once: it is slow
            if tag is None or tag == "tag:yaml.org,2002:merge":
                self.fail(key_node, "keys must be plain names (no '<<' merges, no complex keys)")
                continue
            key = self._scalar(key_node, tag)
            if key is None or isinstance(key, bool) or not isinstance(key, (str, int)):
                self.fail(key_node, f"a key must be a name, not {key!r}")
                continue
            key = str(key)
            if key in result:
                self.fail(key_node, f"duplicate key {key!r}; each key may appear once")
                continue
            result[key] = self.build(value_node, depth + 1)
        return result

    def _scalar(self, node: Node, tag: str | None = None) -> Any:
        tag, value = (node.tag if tag is None else tag), node.value
        if tag.endswith(":str"):
            return value
        if tag.endswith(":null"):
            return None
        if tag.endswith(":bool"):
            return value.lower() == "true"
        if tag.endswith(":int"):
            try:
                return int(value.replace("_", ""), 0)
            except ValueError:
                return value
        if tag.endswith(":float"):
            try:
                return float(value)
            except ValueError:
                return value
        if tag.endswith(":timestamp"):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                self.fail(node, f"{value!r}: write dates as YYYY-MM-DD")
                return None
        self.fail(node, _unsupported(tag))
        return None


_LEAD = re.compile(r"^[ \t?-]*", re.MULTILINE)


def _depth_bound(text: str) -> int:
    """A cheap upper bound of the nesting depth, so that ordinary files skip the event scan.

    Block nesting needs indentation or a '- '/'? ' marker per level (a sequence may sit at its
    key's indentation, hence 2x); flow nesting needs a '[' or '{' per level (counted without
    regard to quoting, so the bound only errs on the safe side).
    """
    lead = max((len(m) for m in _LEAD.findall(text)), default=0)
    flow = depth = 0
    for ch in re.sub(r"[^\[\]{}]+", "", text):
        depth = depth + 1 if ch in "[{" else max(depth - 1, 0)
        flow = max(flow, depth)
    return 2 * lead + flow + 2


def _too_deep(name: str, text: str, yaml: YAML) -> None:
    """Refuse deep nesting before composing: the C composer recurses, and crashes (a
    segmentation fault, not an exception) on a few hundred KB of '['. Events come from an
    iterative parser, so counting them is safe at any depth."""
    if _depth_bound(text) <= MAX_DEPTH:
        return
    depth = 0
    for event in yaml.parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise Problems([Issue(name, mark.line + 1, mark.column + 1,
                                      f"nested more than {MAX_DEPTH} levels deep")])
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def read_yaml(path: Path | str, text: str | None = None, *, pure: bool = False,
              max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Read one YAML file. Raises Problems with every syntax-level issue found.

    `pure` forces ruamel.yaml's pure-Python parser even where libyaml is installed."""
    name = str(path)
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise Problems([Issue(name, None, None, f"cannot read: {exc.strerror}")]) from None
        if len(raw) > max_bytes:
            raise Problems([Issue(name, None, None,
                                  f"file is {len(raw)} bytes; the limit is {max_bytes}")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            column = exc.start - raw.rfind(b"\n", 0, exc.start)
            raise Problems([Issue(name, line, column, f"not UTF-8 text (byte {exc.start}); "
                                  "save the file as UTF-8")]) from None
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise Problems([Issue(name, None, None, f"file is larger than {max_bytes} bytes")])
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise Problems([Issue(name, line, None, "the file contains a NUL character")])
    yaml = _parser(pure)
    try:
        _too_deep(name, text, yaml)
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise Problems([Issue(name, line, column, f"YAML syntax error: {problem}")]) from None
    except (YAMLError, RecursionError, ValueError) as exc:
        raise Problems([Issue(name, None, None, f"YAML syntax error: {exc}")]) from None
    if root is None:
        raise Problems([Issue(name, None, None, "the file is empty")])
    builder = _Constructor(name)
    data = builder.build(root)
    if builder.issues:
        raise Problems(builder.issues)
    if not isinstance(data, dict):
        raise Problems([Issue(*_mark(name, root), "the file must be a mapping of keys to values")])
    return Document(name, data, root)


# ---------------------------------------------------------------- pydantic errors


def _unwrap(annotation: Any) -> Any:
    """Optional[X] / Annotated[X, ...] -> X, when X is a model, dict or list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    return annotation


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class whose field set applies at `loc` (to suggest key names)."""
    current: Any = model
    parts = list(loc)
    while parts:
        current = _unwrap(current)
        part = parts.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            found = next((f for name, f in current.model_fields.items()
                          if part in (name, f.alias)), None)
            if found is None:
                return None
            current = found.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _explain(model: type[BaseModel], error: Any) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    dotted = ".".join(str(p) for p in loc if p != "[key]")
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        keys = _keys_of(parent) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        allowed = f" Allowed here: {', '.join(keys)}." if keys else ""
        where = ".".join(map(str, loc[:-1])) or "the top level"
        return f"unknown key {loc[-1]!r} in {where}{hint}{allowed}"
    if kind == "missing":
        return f"{dotted}: required key missing; add `{loc[-1]}:`"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("string_type", "int_type", "bool_type", "dict_type", "list_type", "date_type",
                "model_type", "int_parsing", "bool_parsing", "date_from_datetime_parsing"):
        message += f" (got {type(error['input']).__name__} {error['input']!r:.60})"
    return f"{dotted}: {message}" if dotted else message


def validate(doc: Document, model: type[BaseModel]) -> tuple[Any, list[Issue]]:
    """Validate a document against a model; issues carry file:line:col."""
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        issues = []
        errors = exc.errors()
        if len(errors) > MAX_REPORTED:
            line, column = doc.where(tuple(errors[MAX_REPORTED]["loc"]))
            issues.append(Issue(doc.path, line, column, f"{len(errors) - MAX_REPORTED} more "
                                "errors in this file, from here on, are not shown; fix the "
                                "ones shown first"))
        for error in errors[:MAX_REPORTED]:
            loc = tuple(error["loc"])
            if error["type"] == "extra_forbidden":
                line, column = doc.where((*loc[:-1], loc[-1], "[key]"))
            else:
                line, column = doc.where(loc)
            issues.append(Issue(doc.path, line, column, _explain(model, error)))
        return None, sorted(set(issues))
