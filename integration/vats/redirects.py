"""The ``set_redirect_active`` rule action: switch forwarding numbers on or off in the PBX
settings, through the same plan (rules, lock, verify) as ``vats apply``. Safe to run twice: a
number already in the wanted state changes nothing."""

from __future__ import annotations

from collections.abc import Sequence

from integration.phone import forwarding_digits
from integration.vats.document import every_redirect
from integration.vats.files import export_document
from integration.vats.plan import apply, read_live


def set_redirect_active(operator, redis, line: str, forwarding: Sequence[str], active: bool) -> str:
    """Set ``isActive`` of every entry of ``line``'s settings that forwards to one of
    ``forwarding`` (10 digits); returns what happened."""
    edited = export_document(read_live(operator, line))
    wanted = 1 if active else 0
    found = [r for _, _, r in every_redirect(edited) if forwarding_digits(r.get("num")) in forwarding]
    for redirect in found:
        redirect["isActive"] = wanted
    if not found:
        return f"{line}: not forwarded to {', '.join(forwarding)}"
    plan = apply(operator, redis, edited, line)
    state = "active" if active else "inactive"
    return (
        f"{line}: {len(plan.changes)} of {len(found)} entries set {state}"
        if plan.changes
        else f"{line}: already {state}"
    )
