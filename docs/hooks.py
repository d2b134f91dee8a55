"""MkDocs hook: the reference sections generated at build time, so that they cannot drift.

A page asks for a generated section with a marker on a line of its own:

    <!-- generated: schema domain -->   the domain file, from schema/domain.schema.json
    <!-- generated: schema config -->   mailstate.yaml, from schema/config.schema.json
    <!-- generated: cli -->             every command and option, from the click group

The schemas are the committed files (a test keeps them equal to the models); the commands are
read from ``mailstate.cli.main``. Nothing generated is written into ``docs/``. A marker that is
unknown, used twice or missing fails the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- generated: ([a-z ]+) -->$", re.MULTILINE)
EXPECTED = {"schema domain", "schema config", "cli"}
_seen: dict[str, str] = {}


def on_pre_build(config: Any) -> None:
    _seen.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def generate(match: re.Match[str]) -> str:
        what = match.group(1)
        if what not in EXPECTED:
            raise PluginError(f"{page.file.src_uri}: unknown marker 'generated: {what}'")
        if what in _seen:
            raise PluginError(f"{page.file.src_uri}: 'generated: {what}' is already in "
                              f"{_seen[what]}")
        _seen[what] = page.file.src_uri
        if what == "cli":
            return cli_reference()
        name = what.split()[1]
        return schema_reference(json.loads(
            (ROOT / "schema" / f"{name}.schema.json").read_text(encoding="utf-8")))
    return MARKER.sub(generate, markdown)


def on_post_build(config: Any) -> None:
    missing = EXPECTED - set(_seen)
    if missing:
        raise PluginError(f"no page has the marker(s) {', '.join(sorted(missing))}")


# ------------------------------------------------------------------ JSON Schema


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _anchor(name: str) -> str:
    return name.lower()


def _type(schema: dict[str, Any]) -> str:
    """A property's type in words, with links to the objects defined on the page."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in schema:
        kinds = [_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        text = " or ".join(kinds)
        if any(s.get("type") == "null" for s in schema["anyOf"]):
            text += " or null"
        return text
    if "enum" in schema:
        return "one of " + ", ".join(_code(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return "list of " + _type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        keys = schema.get("propertyNames", {}).get("enum")
        key = ("key (" + ", ".join(_code(k) for k in keys) + ")") if keys else "name"
        return f"map of {key} → {_type(schema['additionalProperties'])}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return kind


def _constraints(schema: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for sub in schema.get("anyOf", []):
        if sub.get("description"):
            found.append(f"{sub.get('type', 'value')}: {sub['description']}")
        found += _constraints(sub)
    if "examples" in schema:
        found.append("e.g. " + ", ".join(_code(v) for v in schema["examples"]))
    if "pattern" in schema:
        found.append("matches " + _code(schema["pattern"]))
    for key, words in (("minimum", "at least"), ("maximum", "at most"),
                       ("minItems", "at least {} item(s)"), ("maxItems", "at most {} items"),
                       ("minLength", "at least {} characters"),
                       ("maxLength", "at most {} characters")):
        if key in schema:
            found.append(words.format(schema[key]) if "{}" in words
                         else f"{words} {schema[key]}")
    return found


def _cell(text: str) -> str:
    """Text for a table cell: a pipe outside a code span would end the cell."""
    parts = re.split(r"(`+[^`]*`+)", text.replace("\n", " "))
    return "".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def _properties(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, prop in schema.get("properties", {}).items():
        if key in required:
            default = "*required*"
        elif "default" in prop:
            default = _code(prop["default"])
        else:
            default = "—"
        meaning = "; ".join([prop.get("description", ""), *_constraints(prop)]).strip("; ")
        lines.append(f"| {_code(key)} | {_cell(_type(prop))} | {_cell(default)} | "
                     f"{_cell(meaning)} |")
    if len(lines) == 2:
        return []
    if schema.get("additionalProperties") is False:
        lines += ["", "No other key is allowed."]
    return lines


def schema_reference(schema: dict[str, Any]) -> str:
    """The schema's top-level object, then each object it defines, as tables."""
    out = [f"### {schema.get('title', 'Top level')}", "", schema.get("description", ""), "",
           *_properties(schema), ""]
    for name, definition in sorted(schema.get("$defs", {}).items()):
        out += [f"### {name}", "", definition.get("description", ""), "",
                *_properties(definition), ""]
    return "\n".join(out)


# ------------------------------------------------------------------ click


def _commands(group: Any, ctx: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    import click

    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx)
        found.append((f"{prefix} {name}", command, sub))
        if isinstance(command, click.Group):
            found += _commands(command, sub, f"{prefix} {name}")
    return found


def _parameters(command: Any, ctx: Any) -> list[str]:
    import click

    lines: list[str] = []
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    options = [p for p in command.get_params(ctx)
               if isinstance(p, click.Option) and not p.hidden]
    if arguments:
        lines += ["| argument | values |", "|---|---|"]
        for arg in arguments:
            many = "any number" if arg.nargs == -1 else ("required" if arg.required
                                                         else "optional")
            lines.append(f"| {_code(arg.make_metavar(ctx))} | {many} |")
        lines.append("")
    if options:
        lines += ["| option | meaning |", "|---|---|"]
        for opt in options:
            record = opt.get_help_record(ctx)
            if record is None:
                continue
            names, help_text = record
            lines.append(f"| {_code(names)} | {_cell(help_text)} |")
        lines.append("")
    return lines


def cli_reference() -> str:
    """Each command: its help text, its usage line and its arguments and options."""
    import click

    from mailstate.cli import main

    root = click.Context(main, info_name="mailstate")
    out = ["### mailstate", "", main.help or "", "", "```text",
           main.get_usage(root), "```", "", *_parameters(main, root)]
    for path, command, ctx in _commands(main, root, "mailstate"):
        out += [f"### {path}", "", (command.help or "").strip(), "", "```text",
                command.get_usage(ctx), "```", "", *_parameters(command, ctx)]
    return "\n".join(out)
