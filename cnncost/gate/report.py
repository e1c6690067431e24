"""Reports of a gate run: text, JSON and Markdown, plus GitHub Actions annotations.

One renderer per format (GateResult -> text), registered in cnncost.formats. All three
show the same table (model x metric: baseline, current, delta, delta %, budget,
tolerance, status) built by :func:`cells`; JSON carries the exact numbers. Markdown
is a pull-request comment: headline counts, the rows that need attention, then the
passing rows collapsed. :func:`github_annotations` gives ``::error``/``::warning`` workflow
commands that point at the budget file line. Nothing here computes a status.
"""

from __future__ import annotations

import json

from ..formats.common import aligned
from .check import COLUMNS, GateResult, Row, cells, headline  # noqa: F401 (re-exported)

QUIET = ("pass",)  # statuses collapsed in the markdown report


def findings(result: GateResult) -> list[tuple[str, str, int]]:
    """(level, message, line) of every violated check, errors first."""
    out = [(f.level, f.message, f.line) for row in result.rows for f in row.findings]
    return sorted(out, key=lambda item: item[0] != "error")


def source(result: GateResult) -> str:
    """What was compared with what: 'budget F, baseline git HEAD (1a2b3c4)' (--against),
    'budget F, baseline B at <commit>' (a stored baseline) or 'budget F, no baseline'."""
    if result.baseline_label:
        measured = (f", measured metrics from {result.baseline_file}" if result.baseline_file
                    else "")
        return f"budget {result.budget_file}, baseline git {result.baseline_label}{measured}"
    if not result.baseline_file:
        return f"budget {result.budget_file}, no baseline"
    commit = f" at {result.baseline_commit[:12]}" if result.baseline_commit else ""
    return f"budget {result.budget_file}, baseline {result.baseline_file}{commit}"


def render_text(result: GateResult) -> str:
    right = {2, 3, 4, 5}  # baseline, current, delta, delta %
    lines = aligned(list(COLUMNS), [cells(row) for row in result.rows],
                    [i not in right for i in range(len(COLUMNS))])
    out = [f"cnncost gate | {source(result)}", *lines, ""]
    for level, message, line in findings(result):
        out.append(f"{level}: {result.budget_file}:{line}: {message}")
    for row in result.rows:
        if row.note and row.status in ("skipped", "removed"):
            out.append(f"{row.status}: {row.model} {row.metric}: {row.note}")
    out.extend(f"note: {note}" for note in result.notes)
    if result.counts()["improved"]:
        out.append("note: improved metrics: run `cnncost baseline update` to lock in the gains")
    out.append(f"gate {headline(result)}")
    return "\n".join(out) + "\n"


def _md_table(rows: list[Row]) -> list[str]:
    align = ["---", "---", "---:", "---:", "---:", "---:", "---", "---", "---"]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        values = [c.replace("|", "\\|") for c in cells(row)]
        if row.status not in QUIET:
            values[-1] = f"**{values[-1]}**"
        lines.append("| " + " | ".join(values) + " |")
    return lines


def render_markdown(result: GateResult) -> str:
    mark = ":x:" if result.exit_code else ":white_check_mark:"
    out = [f"### {mark} cnncost gate {headline(result)}", "", f"_{source(result)}_", ""]
    loud = [r for r in result.rows if r.status not in QUIET]
    quiet = [r for r in result.rows if r.status in QUIET]
    if loud:
        out += [*_md_table(loud), ""]
    for level, message, line in findings(result):
        out.append(f"- **{level}** `{result.budget_file}:{line}`: {message}")
    for row in loud:
        if row.note:
            out.append(f"- {row.status}: {row.model} {row.metric}: {row.note}")
    out += [f"- note: {note}" for note in result.notes]
    if quiet:
        out += ["", f"<details><summary>{len(quiet)} passing</summary>", "", *_md_table(quiet),
                "", "</details>"]
    return "\n".join(out).rstrip() + "\n"


def render_json(result: GateResult) -> str:
    data = {
        "schema": "cnncost.gate",
        "schema_version": 1,
        "passed": result.exit_code == 0,
        "exit_code": result.exit_code,
        "strict": result.strict,
        "budget_file": result.budget_file,
        "baseline_file": result.baseline_file,
        "baseline_commit": result.baseline_commit,
        "baseline_ref": result.baseline_ref,
        "counts": result.counts(),
        "rows": [{"model": r.model, "metric": r.metric, "baseline": r.baseline,
                  "current": r.current, "delta": r.delta, "delta_pct": r.delta_pct,
                  "budget": r.budget or None, "tolerance": r.tolerance or None,
                  "status": r.status, "line": r.line or None, "note": r.note or None,
                  "findings": [f._asdict() for f in r.findings]} for r in result.rows],
        "notes": result.notes,
    }
    return json.dumps(data, indent=2) + "\n"


def render_codequality(result: GateResult) -> str:
    """GitLab Code Quality report: one issue per violated check, at its budget file line
    (a job's `artifacts: reports: codequality:` shows them in the merge request)."""
    import hashlib

    issues = []
    for row in result.rows:
        for finding in row.findings:
            key = f"{result.budget_file}|{row.model}|{row.metric}|{finding.message}"
            issues.append({
                "description": finding.message,
                "check_name": f"cnncost-gate-{row.metric}",
                "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
                "severity": "major" if finding.level == "error" else "minor",
                "location": {"path": result.budget_file, "lines": {"begin": finding.line or 1}},
            })
    return json.dumps(issues, indent=2) + "\n"


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def github_annotations(result: GateResult) -> list[str]:
    """GitHub Actions workflow commands, one per violated check, at the budget file line."""
    out = []
    for level, message, line in findings(result):
        command = "error" if level == "error" else "warning"
        out.append(f"::{command} file={_escape(result.budget_file, True)},line={line},"
                   f"title=cnncost gate::{_escape(message)}")
    return out


def problem_annotations(problems: list, ref: str | None = None) -> list[str]:
    """::error commands for bad input (spec or budget errors), at the file and line.

    A problem in a file read at git ref `ref` (``REF:path``, gate --against) is not in
    the checked-out tree, so its annotation names the place in its message instead."""
    out = []
    for p in problems:
        at_ref = ref is not None and p.loc.file.startswith(f"{ref}:")
        where = f"file={_escape(p.loc.file, True)}" if p.loc.file and not at_ref else ""
        if where and p.loc.line:
            where += f",line={p.loc.line}"
        message = f"{p.path}: {p.message}" if p.path else p.message
        if at_ref:
            message = f"{p.loc}: {message}"
        out.append(f"::error {where + ',' if where else ''}title=cnncost::{_escape(message)}")
    return out
