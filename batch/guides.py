"""What guided an input's colours, as its manifest line records it: its `--hints` (photos only)
and its reference photo (`--reference`, or the hints file's). A rerun whose guides for an input
differ from its line's colours that input again (`batch.manifest.Manifest.stale`); `fingerprint`
is the one rule of "differ": the same hints, and a reference with the same bytes (sha256), wherever
the file now lies.
"""

from __future__ import annotations

from typing import Any, Mapping

from retint.batch.hints import applied_hints
from retint.batch.naming import PlannedOutput
from retint.runtime.guides.hints import hints_as_json


def recorded_guides(item: PlannedOutput) -> dict[str, Any]:
    """The `hints` and `reference` fields of `item`'s manifest line (only those it has)."""
    recorded: dict[str, Any] = {}
    hints = applied_hints(item)
    if hints:
        recorded["hints"] = hints_as_json(hints)
    if item.reference is not None:
        recorded["reference"] = item.reference.recorded()
    return recorded


def guides_by_identity(planned: list[PlannedOutput]) -> dict[str, dict[str, Any]]:
    """Identity -> `recorded_guides` of each input this run guides."""
    return {item.task.identity: guides for item in planned if (guides := recorded_guides(item))}


def fingerprint(line: Mapping[str, Any]) -> tuple[Any, Any]:
    """What must match for a line (or `recorded_guides`) to count as made with the same guides."""
    reference = line.get("reference")
    return line.get("hints") or None, reference.get("sha256") if isinstance(reference, dict) else None
