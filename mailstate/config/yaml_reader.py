"""YAML files -> plain data with positions -> pydantic models; every problem as file:line:col.

Domain files arrive in pull requests, so this is the first trust boundary. The file is read
as a stream of parser events (libyaml's parser, C, when ruamel.yaml.clib is installed; the
pure-Python one otherwise) and turned straight into plain data by one small loop of our own,
without a node tree in between: no second walk, and no recursion, so no nesting can overflow
a stack. The loop refuses what a domain file never needs: duplicate keys, anchors and aliases
(size blow-ups), custom tags, more than ``MAX_DEPTH`` levels, huge files. It keeps the position
of every value, so that any later error, from pydantic or from a cross-object rule, can be
pointed at the line and column it came from.
"""

from __future__ import annotations

import datetime as dt
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.resolver import implicit_resolvers

from mailstate.model.diagnostics import Issue, Problems

MAX_FILE_BYTES = 1024 * 1024
# mailstate.yaml is the operator's (trusted) file, and an adopted server lists one kept home
# per mailbox in it: room for a large server's, still a bound.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
YAML_VERSION = (1, 2)  # plain scalars are typed by YAML 1.2's rules (no yes/no booleans)
TAG = "tag:yaml.org,2002:"


def _parser(pure: bool) -> YAML:
    """ruamel.yaml's safe parser: libyaml's (ruamel.yaml.clib) when installed and not `pure`,
    else the pure-Python one. Both give the same events; the tests run both."""
    return YAML(typ="safe", pure=pure)


def has_c_parser() -> bool:
    """True when ruamel.yaml can use libyaml here (the optional ruamel.yaml.clib)."""
    return _parser(pure=False).Parser is not _parser(pure=True).Parser


# ruamel.yaml's own rules for plain scalars (the table its resolver uses), by first character.
_IMPLICIT: dict[str | None, list[tuple[str, typing.Pattern[str]]]] = {}
for _versions, _tag, _regexp, _first in implicit_resolvers:
    if YAML_VERSION in _versions:
        for _ch in _first or [None]:
            _IMPLICIT.setdefault(_ch, []).append((_tag, _regexp))
_ANY = _IMPLICIT.pop(None, [])
_BY_FIRST = {ch: rules + _ANY for ch, rules in _IMPLICIT.items()}


def resolve(value: str) -> str:
    """The tag of an untagged plain scalar, exactly as ruamel.yaml's resolver finds it."""
    for tag, regexp in _BY_FIRST.get(value[:1], _ANY):
        if regexp.match(value):
            return tag
    return TAG + "str"


Loc = tuple[str | int, ...]


class _Map:
    """Where a mapping is, and key -> (key's mark, value's position) for each of its keys."""

    __slots__ = ("items", "mark")

    def __init__(self, mark: Any) -> None:
        self.mark = mark
        self.items: dict[str, tuple[Any, Any]] = {}


class _Seq:
    """Where a sequence is, and the position of each item."""

    __slots__ = ("items", "mark")

    def __init__(self, mark: Any) -> None:
        self.mark = mark
        self.items: list[Any] = []


def _start(position: Any) -> Any:
    """The parser's mark (0-based line and column) of a position: a scalar's is its mark."""
    return position.mark if isinstance(position, (_Map, _Seq)) else position


@dataclass
class Document:
    """A loaded YAML file: its data, and where each of its values is."""

    path: str
    data: Any
    root: Any = field(repr=False, default=None)  # a _Map, _Seq or a scalar's mark

    def where(self, loc: Loc) -> tuple[int | None, int | None]:
        """1-based line and column of the value at `loc` (or of the deepest part found)."""
        position = self.root
        if position is None:
            return (None, None)
        mark = key_mark = _start(position)
        for part in loc:
            if part == "[key]":  # pydantic's marker for an error in a dict key
                mark = key_mark
                break
            if isinstance(position, _Map):
                match = position.items.get(str(part))
                if match is None:
                    mark = key_mark  # a missing key: point at its parent's key
                    break
                key_mark, position = match
                mark = _start(position)
            elif (isinstance(position, _Seq) and isinstance(part, int)
                  and 0 <= part < len(position.items)):
                position = position.items[part]
                mark = _start(position)
            else:
                break
        return (mark.line + 1, mark.column + 1)

    def issue(self, loc: Loc, message: str, severity: str = "error") -> Issue:
        line, column = self.where(loc)
        return Issue(self.path, line, column, message, severity)


def _unsupported(tag: str) -> str:
    shown = tag.replace(TAG, "!!")
    return f"the YAML tag {shown!r} is not supported here; write a plain value without a tag"


_NO_KEY = object()


class _Frame:
    """A mapping or sequence being filled while its events arrive."""

    __slots__ = ("bad_key", "data", "key", "key_mark", "muted", "position")

    def __init__(self, data: Any, position: Any, muted: bool) -> None:
        self.data = data
        self.position = position
        self.key: Any = _NO_KEY  # in a mapping: the key waiting for its value
        self.key_mark: Any = None
        self.bad_key = False  # the waiting key was refused: drop its value unread
        self.muted = muted  # inside such a value: report nothing



class _Builder:
    """Parser events -> plain Python and positions, refusing aliases, duplicate keys, unusual
    tags and deep nesting. One pass over the events; the stack holds the open collections."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.issues: list[Issue] = []
        self.aliased = False  # report aliases once: a billion laughs is one mistake

    def fail(self, mark: Any, message: str, muted: bool = False) -> None:
        if not muted:
            self.issues.append(Issue(self.path, mark.line + 1, mark.column + 1, message))

    def scalar(self, event: ScalarEvent, muted: bool, is_key: bool) -> Any:
        tag, value = event.tag, event.value
        if tag is None or tag == "!":
            tag = resolve(value) if event.implicit[0] else TAG + "str"
        if tag == TAG + "str":
            return value
        if tag == TAG + "null":
            return None
        if tag == TAG + "bool":
            return value.lower() == "true"
        if tag == TAG + "int":
            try:
                return int(value.replace("_", ""), 0)
            except ValueError:
                return value
        if tag == TAG + "float":
            try:
                return float(value)
            except ValueError:
                return value
        if tag == TAG + "timestamp":
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                self.fail(event.start_mark, f"{value!r}: write dates as YYYY-MM-DD", muted)
                return None
        if tag == TAG + "merge" and is_key:
            return _MERGE
        self.fail(event.start_mark, _unsupported(tag), muted)
        return None

    def build(self, events: typing.Iterator[Any]) -> tuple[Any, Any]:
        """(data, position) of the one document in `events`; (None, None) for no document.

        Raises Problems for nesting deeper than MAX_DEPTH (at once: a file that deep is an
        attack, not a typo) and for a second document."""
        stack: list[_Frame] = []
        root: Any = _NO_KEY
        root_position: Any = None
        documents = 0
        anchors: dict[str, Any] = {}  # anchor name -> where the anchored value starts
        for event in events:
            kind = type(event)
            if kind is ScalarEvent and stack and event.tag is None and event.anchor is None:
                # The common case, kept short: an untagged scalar in a collection being read.
                parent = stack[-1]
                data = parent.data
                text = event.value
                if (not parent.muted and not parent.bad_key
                        and (not event.implicit[0] or text[:1] not in _BY_FIRST)):
                    if data.__class__ is list:
                        data.append(text)
                        parent.position.items.append(event.start_mark)
                        continue
                    if parent.key_mark is not None:
                        data[parent.key] = text
                        parent.position.items[parent.key] = (parent.key_mark, event.start_mark)
                        parent.key, parent.key_mark = _NO_KEY, None
                        continue
                    if text not in data:
                        parent.key, parent.key_mark = text, event.start_mark
                        continue
            if kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = stack.pop()
                value, position = frame.data, frame.position
            elif kind is ScalarEvent:
                parent = stack[-1] if stack else None
                value = self.scalar(event, _muted(parent), _awaits_key(parent))
                position = event.start_mark
                if event.anchor is not None:
                    anchors[event.anchor] = position
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                mark = event.start_mark
                if event.anchor is not None:
                    anchors[event.anchor] = mark
                if len(stack) >= MAX_DEPTH:
                    raise Problems([Issue(self.path, mark.line + 1, mark.column + 1,
                                          f"nested more than {MAX_DEPTH} levels deep")])
                parent = stack[-1] if stack else None
                # A complex key is refused whole when it ends: nothing inside it is reported.
                muted = _muted(parent) or _awaits_key(parent)
                mapping = kind is MappingStartEvent
                tag = event.tag
                if tag is not None and tag != "!" and tag != TAG + ("map" if mapping else "seq"):
                    self.fail(mark, _unsupported(tag), muted)
                    stack.append(_Frame(None, mark, True))  # content unread; stands as None
                elif mapping:
                    stack.append(_Frame({}, _Map(mark), muted))
                else:
                    stack.append(_Frame([], _Seq(mark), muted))
                continue
            elif kind is AliasEvent:
                if not self.aliased and not _muted(stack[-1] if stack else None):
                    # reported where the anchored value is: that is what is used twice
                    self.fail(anchors.get(event.anchor, event.start_mark),
                              "YAML anchors and aliases (&name, *name) are not allowed in "
                              "mailstate files; write the value out")
                    self.aliased = True
                value, position = None, event.start_mark
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    mark = event.start_mark
                    raise Problems([Issue(self.path, mark.line + 1, mark.column + 1,
                                          "YAML syntax error: expected a single document in "
                                          "the stream but found another document")])
                continue
            else:
                continue
            if not stack:
                root, root_position = value, position
            else:
                self.attach(stack[-1], value, position, kind)
        return (None, None) if root is _NO_KEY else (root, root_position)

    def attach(self, parent: _Frame, value: Any, position: Any, kind: type) -> None:
        """Put a finished value into the open collection: an item, a key, or a key's value."""
        if isinstance(parent.data, list):
            parent.data.append(value)
            parent.position.items.append(position)
        elif parent.data is None:
            return  # inside a collection with a refused tag
        elif parent.key_mark is None:
            self.key(parent, value, position, kind)
        else:
            if not parent.bad_key:
                parent.data[parent.key] = value
                parent.position.items[parent.key] = (parent.key_mark, position)
            parent.key, parent.key_mark, parent.bad_key = _NO_KEY, None, False

    def key(self, frame: _Frame, key: Any, position: Any, kind: type) -> None:
        """A mapping key arrived: check it, and wait for its value."""
        mark = _start(position)
        frame.key, frame.key_mark = key, mark
        muted = frame.muted
        if kind is not ScalarEvent or key is _MERGE:
            self.fail(mark, "keys must be plain names (no '<<' merges, no complex keys)", muted)
            frame.bad_key = True
        elif key is None or isinstance(key, bool) or not isinstance(key, (str, int)):
            self.fail(mark, f"a key must be a name, not {key!r}", muted)
            frame.bad_key = True
        elif str(key) in frame.data:
            self.fail(mark, f"duplicate key {str(key)!r}; each key may appear once", muted)
            frame.bad_key = True
        else:
            frame.key = str(key)


def _muted(frame: _Frame | None) -> bool:
    """Whether issues found now go unreported: inside a value whose key was refused."""
    return frame is not None and (frame.muted or frame.bad_key)


def _awaits_key(frame: _Frame | None) -> bool:
    return frame is not None and isinstance(frame.data, dict) and frame.key_mark is None


class _Merge:
    """The tag of a plain '<<' key: refused, never merged."""


_MERGE = _Merge()


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
    builder = _Builder(name)
    try:
        data, root = builder.build(_parser(pure).parse(text))
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
    if builder.issues:
        raise Problems(builder.issues)
    if not isinstance(data, dict):
        mark = _start(root)
        raise Problems([Issue(name, mark.line + 1, mark.column + 1,
                              "the file must be a mapping of keys to values")])
    return Document(name, data, root)
