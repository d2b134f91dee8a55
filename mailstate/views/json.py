"""The plan as JSON: what ``plan --out`` saves and ``--format json`` prints.

The shape is documented in docs/plan-json.md (JSON Schema: schema/plan.schema.json); ``FORMAT``
is its version and the compatibility promise.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict, fields, is_dataclass
from enum import Enum

from mailstate.model.routing import RouteChange
from mailstate.plan import Change, FieldChange, FileAction, Plan, ServerPlan

FORMAT = 1  # the JSON plan's version: docs/plan-json.md says what it promises


def render_json(plan: Plan) -> str:
    return json.dumps({"format": FORMAT, "summary": plan.counts().as_dict(),
                       "has_changes": plan.has_changes, "checksum": plan.checksum(),
                       "servers": [asdict(s) for s in plan.servers]}, indent=2,
                      default=str) + "\n"


EDITED = ("the saved plan was edited since it was made; make it again with "
          "`mailstate plan --out`")
DAMAGED = "a damaged mailstate plan file ({}); make it again with `mailstate plan --out`"


def load_plan(text: str) -> Plan:
    """A plan saved with ``plan --out``; ValueError when it is not one, is damaged, or was
    edited since (its checksum, recomputed from what was loaded, must be the one saved)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("not a mailstate plan file (not JSON); make one with "
                         "`mailstate plan --out FILE`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a mailstate plan file (format {FORMAT})")
    servers = []
    try:
        if not isinstance(data["servers"], list):
            raise TypeError("'servers' is not a list")
        for s in data["servers"]:
            changes = [Change(**{**c, "fields": [FieldChange(**f) for f in c["fields"]]})
                       for c in s.pop("changes")]
            files = [FileAction(**f) for f in s.pop("files")]
            routing = [RouteChange(**r) for r in s.pop("routing", [])]
            server = ServerPlan(**s, changes=changes, files=files, routing=routing)
            _check_types(server)
            servers.append(server)
        plan = Plan(servers)
        checksum = plan.checksum()
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(DAMAGED.format(repr(exc))) from None
    if data.get("checksum") != checksum:
        raise ValueError(EDITED)
    return plan


def _check_types(value: object, where: str = "server") -> None:
    """TypeError unless every field of a loaded dataclass has its declared type (JSON gives
    any type anywhere; a wrong one would fail later, in a view or in apply)."""
    hints = typing.get_type_hints(type(value))
    for f in fields(value):  # type: ignore[arg-type]
        if not _fits(getattr(value, f.name), hints[f.name]):
            raise TypeError(f"{where}.{f.name} is not a {hints[f.name]}")


def _fits(value: object, hint: object) -> bool:
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(_fits(k, key) and _fits(v, item)
                                               for k, v in value.items())
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and is_dataclass(hint):
        if not isinstance(value, hint):
            return False
        _check_types(value, hint.__name__)
        return True
    if isinstance(hint, type) and issubclass(hint, Enum):
        return isinstance(value, hint)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)
