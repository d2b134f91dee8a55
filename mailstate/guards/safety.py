"""Safety over a fleet: plans that remove too much are refused, domains that move are named.

As octoDNS's ``MAX_SAFE_DELETE_PCENT``: a plan that removes or disables more than a share of a
server's mailboxes and addresses (``max_safe_delete``, default 30 %) is shown in full, but
apply refuses it without ``--force``. Servers holding few objects are exempt from the share
(one mailbox of three is a third), but a domain whose file was deleted is never removed without
``--force``: that would disable every mailbox it has. A moved domain does not count: its
mailboxes live on, on the other server. A domain that leaves one server and
appears on another in the same run is a move: created on the new one, disabled on the old
one, its mail kept there until the operator moves it (docs/fleets.md, "Moving a domain").
"""

from __future__ import annotations

from mailstate.plan import Action, Change, Kind, Plan, ServerPlan

LOCK_TIMEOUT = 60.0  # seconds an apply waits for another one to finish
MIN_OBJECTS = 10  # below this many mailboxes and addresses the share is not checked
MOVE_STEPS = "docs/fleets.md: Moving a domain"


class ApplyRefused(Exception):
    """Apply stopped before changing anything; the message says why and what to do."""


def _disables(change: Change) -> bool:
    if change.kind in (Kind.MAILBOX, Kind.ALIAS) and change.action == Action.REMOVE:
        return True
    return change.kind == "mailbox" and any(f.field == "primary_address" and f.old is True
                                            and f.new is False for f in change.fields)


def unsafe(plan: ServerPlan, max_percent: int) -> str | None:
    """Why applying this plan needs --force, or None."""
    gone = [c.name for c in plan.changes if c.kind == Kind.DOMAIN and c.action == Action.REMOVE
            and c.name not in plan.moved]
    boxes = {d: sum(1 for c in plan.changes if c.kind == Kind.MAILBOX and c.action == Action.REMOVE
                    and c.domain == d) for d in gone}
    gone = [d for d in gone if boxes[d]]
    if gone:
        listed = ", ".join(f"{d} with {boxes[d]} mailbox{'es' if boxes[d] != 1 else ''}"
                           for d in gone)
        return (f"the plan removes domain{'s' if len(gone) > 1 else ''} {listed} (was its file "
                "deleted?): its mailboxes would be disabled; if that is meant, apply with "
                "--force")
    # A moved domain's mailboxes live on (on the new server): they do not count.
    removed = sum(1 for c in plan.changes if _disables(c) and c.domain not in plan.moved)
    total = plan.live_objects
    if total >= MIN_OBJECTS and removed * 100 > max_percent * total:
        return (f"the plan removes or disables {removed} of the {total} mailboxes and "
                f"addresses on this server ({removed * 100 // total}%), more than the safe "
                f"{max_percent}% (max_safe_delete); review it, then apply with --force")
    return None


def check_safe(plan: ServerPlan, max_percent: int) -> None:
    reason = unsafe(plan, max_percent)
    if reason:
        raise ApplyRefused(f"{plan.server}: {reason}")


def annotate_moves(fleet: Plan) -> None:
    """Mark domains removed from one server and added on another in the same plan."""
    removed = {c.name: s for s in fleet.servers for c in s.changes
               if c.kind == Kind.DOMAIN and c.action == Action.REMOVE}
    for new in fleet.servers:
        for change in new.changes:
            old = removed.get(change.name)
            if change.kind != Kind.DOMAIN or change.action != Action.ADD or old is None:
                continue
            new.moved[change.name] = f"from {old.server}"
            old.moved[change.name] = f"to {new.server}"
            change.note = f"moved from {old.server} (its mail stays there: {MOVE_STEPS})"
            for gone in old.changes:
                if gone.kind == "domain" and gone.name == change.name:
                    gone.note = (f"moved to {new.server}: mail to it is refused here, "
                                 f"mailboxes disabled, mail kept ({MOVE_STEPS})")
