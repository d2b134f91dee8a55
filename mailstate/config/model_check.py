"""A document checked against its pydantic model: every error as file:line:col with what to
do (unknown keys with the closest allowed name, missing keys, wrong types), at most
``MAX_REPORTED`` per file."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from mailstate.config.yaml_reader import Document, Loc
from mailstate.model.diagnostics import Issue

MAX_REPORTED = 100  # schema errors shown per file; the rest are counted


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
