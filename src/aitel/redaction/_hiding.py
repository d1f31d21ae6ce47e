"""Applies the field lists of :mod:`aitel.redaction.presets` to a packet.

Hiding replaces content wholesale, before detection runs. Packet structure
(the packet dict, its steps and their sections) is changed in place; user
values under hidden fields are replaced or copied, never mutated, since they
may still belong to the application.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aitel.redaction.patterns import HIDDEN, HIDDEN_MARKER
from aitel.redaction.presets import KEEP, NUMBERS
from aitel.redaction.scrubber import RedactionSession


def hide_fields(
    packet: dict[str, Any], paths: Sequence[tuple[str, ...]], session: RedactionSession
) -> None:
    """Replace the value at each path (``*`` = every list item) with ``<HIDDEN>``."""
    for path in paths:
        stack: list[tuple[Any, int]] = [(packet, 0)]
        while stack:
            node, depth = stack.pop()
            key = path[depth]
            last = depth == len(path) - 1
            if key == "*":
                if not isinstance(node, list):
                    continue
                slots: Sequence[Any] = range(len(node))
            elif isinstance(node, dict) and key in node:
                slots = (key,)
            else:
                continue
            for slot in slots:
                child = node[slot]
                if last:
                    if child is not None and child != HIDDEN_MARKER:
                        node[slot] = HIDDEN_MARKER
                        session.note(HIDDEN)
                elif isinstance(child, dict | list):
                    stack.append((child, depth + 1))


def hide_texts(value: Any, session: RedactionSession) -> Any:
    """A copy of ``value`` with its shape and numbers kept and every text hidden."""
    holder: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, holder, 0)]
    seen: set[int] = set()
    hidden = 0
    while stack:
        item, parent, slot = stack.pop()
        if item is None or isinstance(item, bool | int | float):
            parent[slot] = item
        elif isinstance(item, dict | list | tuple):
            if id(item) in seen:
                parent[slot] = HIDDEN_MARKER
                hidden += 1
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                out: Any = {}
                for key, child in list(item.items()):
                    out[key] = None
                    stack.append((child, out, key))
            else:
                out = [None] * len(item)
                for index, child in enumerate(item):
                    stack.append((child, out, index))
            parent[slot] = out
        else:
            parent[slot] = HIDDEN_MARKER
            hidden += 1
    if hidden:
        session.note(HIDDEN, hidden)
    return holder[0]


def hide_strict(packet: dict[str, Any], spec: dict[str, Any], session: RedactionSession) -> None:
    """Keep what ``spec`` lists, hide every other text (see ``presets.STRICT_KEEP``)."""
    stack: list[tuple[Any, Any]] = [(packet, spec)]
    while stack:
        node, rules = stack.pop()
        if rules is KEEP:
            continue
        if isinstance(node, list):
            item_rules = rules.get("*") if isinstance(rules, dict) else None
            for index in range(len(node)):
                _apply(node, index, item_rules, stack, session)
        elif isinstance(node, dict) and isinstance(rules, dict):
            for key in list(node):
                _apply(node, key, rules.get(key), stack, session)


def _apply(
    parent: Any, slot: Any, rules: Any, stack: list[tuple[Any, Any]], session: RedactionSession
) -> None:
    child = parent[slot]
    if rules is KEEP or child is None:
        return
    if isinstance(rules, dict) and isinstance(child, dict | list):
        stack.append((child, rules))
    elif rules == NUMBERS or isinstance(child, dict | list | tuple):
        parent[slot] = hide_texts(child, session)
    elif not isinstance(child, bool | int | float):
        parent[slot] = HIDDEN_MARKER
        session.note(HIDDEN)
