"""The ``tessera:`` extension terms hold patches: what the applet has that the ReproSchema
terms of the same document do not say.

The export reads its own ReproSchema documents back (without the extension) and stores the
difference between the applet and that reading; the import reads the ReproSchema terms the
same way and applies the patch. So a round trip is exact by construction, the extension
never repeats what ReproSchema says (an edit to the ReproSchema terms is not overridden by
a stale copy), and a bundle without the extension reads as what ReproSchema says alone.

A patch is a JSON value: a dict patches a dict key by key; a list of dicts patches a list of
dicts of the same length element by element (``{}`` leaves one as it is); anything else
replaces. Score reports have their own patch (:func:`diff_reports`, :func:`merge_reports`):
a report that a ReproSchema ``compute`` already gives is named by ``{"compute": id}``, plus
what differs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SAME", "diff", "diff_reports", "merge", "merge_reports", "trim"]

SAME: Any = object()
"""What :func:`diff` answers for two equal values."""

_NO_REPORTS: dict[str, Any] = {"generate_report": False, "show_score_summary": False, "reports": []}


def _dicts(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, dict) for v in values)


def diff(actual: Any, base: Any) -> Any:
    """The patch that turns ``base`` into ``actual`` (:data:`SAME` when they are equal)."""
    if actual == base:
        return SAME
    if isinstance(actual, dict) and isinstance(base, dict):
        patch = {}
        for key, value in actual.items():
            change = diff(value, base[key]) if key in base else value
            if change is not SAME:
                patch[key] = change
        return patch
    if _dicts(actual) and _dicts(base) and len(actual) == len(base):
        return [{} if (d := diff(a, b)) is SAME else d for a, b in zip(actual, base, strict=True)]
    return actual


def trim(patch: Any, lean: Any, base: Any) -> Any:
    """``patch`` (``diff(actual, base)``) without what validation fills in anyway: ``lean``
    is ``actual`` dumped without its defaults (a missing key holds a default), so a key the
    base does not have either need not be in the patch."""
    if isinstance(patch, dict) and isinstance(lean, dict):
        if not isinstance(base, dict):
            return lean
        trimmed = {}
        for key, value in patch.items():
            if key in base:
                default = (
                    {} if isinstance(value, dict) else [] if isinstance(value, list) else value
                )
                change = trim(value, lean.get(key, default), base[key])
                if change != {} or not isinstance(base[key], dict):
                    trimmed[key] = change
            elif key in lean:
                trimmed[key] = lean[key]
        return trimmed
    if isinstance(patch, list) and isinstance(lean, list):
        if _dicts(patch) and _dicts(base) and len(patch) == len(base) == len(lean):
            return [trim(p, l_, b) for p, l_, b in zip(patch, lean, base, strict=True)]
        return lean
    return patch


def merge(base: Any, patch: Any) -> Any:
    """``base`` with ``patch`` applied."""
    if isinstance(patch, dict) and isinstance(base, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if _dicts(patch) and _dicts(base) and len(patch) == len(base):
        return [merge(b, p) for b, p in zip(base, patch, strict=True)]
    return patch


def diff_reports(actual: dict[str, Any] | None, base: dict[str, Any] | None) -> Any:
    """The patch of an activity's ``scores_and_reports``."""
    if actual == base:
        return SAME
    if actual is None:
        return None
    inferred = base or _NO_REPORTS
    patch: dict[str, Any] = {
        key: actual[key]
        for key in ("generate_report", "show_score_summary")
        if actual[key] != inferred[key]
    }
    if actual["reports"] != inferred["reports"]:
        computed = {r["id"]: r for r in inferred["reports"] if r["type"] == "score"}
        entries = []
        for report in actual["reports"]:
            if report["type"] == "score" and report["id"] in computed:
                entry = {"compute": report["id"]}
                change = diff(report, computed[report["id"]])
                if change is not SAME:
                    entry.update(change)
                entries.append(entry)
            else:
                entries.append(report)
        patch["reports"] = entries
    return patch


def merge_reports(base: dict[str, Any] | None, patch: Any) -> tuple[Any, list[str]]:
    """``base`` (reports read from ``compute``) patched; and the computes the patch names
    that are not there any more."""
    if not isinstance(patch, dict):
        return patch, []
    merged = {**_NO_REPORTS, **(base or {})}
    for key in ("generate_report", "show_score_summary"):
        if key in patch:
            merged[key] = patch[key]
    missing: list[str] = []
    if isinstance(patch.get("reports"), list):
        computed = {r["id"]: r for r in merged["reports"] if r.get("type") == "score"}
        reports, used = [], set()
        for entry in patch["reports"]:
            if isinstance(entry, dict) and "compute" in entry:
                name = entry["compute"]
                if name not in computed:
                    missing.append(str(name))
                    continue
                used.add(name)
                reports.append(
                    merge(computed[name], {k: v for k, v in entry.items() if k != "compute"})
                )
            else:
                reports.append(entry)
        reports += [r for name, r in computed.items() if name not in used]
        merged["reports"] = reports
    return merged, missing
