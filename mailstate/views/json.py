"""The plan as JSON: what ``plan --out`` saves and ``--format json`` prints.

The shape is documented in docs/plan-json.md (JSON Schema: schema/plan.schema.json); ``FORMAT``
is its version and the compatibility promise.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from mailstate.model.routing import RouteChange
from mailstate.plan import Change, FieldChange, FileAction, Plan, ServerPlan

FORMAT = 1  # the JSON plan's version: docs/plan-json.md says what it promises


def render_json(plan: Plan) -> str:
    return json.dumps({"format": FORMAT, "summary": plan.counts().as_dict(),
                       "has_changes": plan.has_changes, "checksum": plan.checksum(),
                       "servers": [asdict(s) for s in plan.servers]}, indent=2,
                      default=str) + "\n"


def load_plan(text: str) -> Plan:
    """A plan saved with ``plan --out``; ValueError when it is not one or is damaged."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("not a mailstate plan file (not JSON); make one with "
                         "`mailstate plan --out FILE`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a mailstate plan file (format {FORMAT})")
    servers = []
    try:
        for s in data["servers"]:
            changes = [Change(**{**c, "fields": [FieldChange(**f) for f in c["fields"]]})
                       for c in s.pop("changes")]
            files = [FileAction(**f) for f in s.pop("files")]
            routing = [RouteChange(**r) for r in s.pop("routing", [])]
            servers.append(ServerPlan(**s, changes=changes, files=files, routing=routing))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"a damaged mailstate plan file ({exc!r}); make it again with "
                         "`mailstate plan --out`") from None
    return Plan(servers)
