"""`compare --format html` and `gate --format html`: the command's table as a
self-contained HTML page (the compare page adds its MACs-vs-params plot as inline SVG when
matplotlib is installed). Every text is escaped; nothing is fetched at view time."""

from __future__ import annotations

import html
import io
from typing import Any

STYLE = ("body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2em;"
         "color:#222}h1{font-size:1.3em}.sub{color:#555}table{border-collapse:collapse;"
         "font-size:.9em;margin:.6em 0}td,th{border:1px solid #ddd;padding:.2em .5em;"
         "text-align:right}td:first-child,th:first-child{text-align:left}"
         ".fail{background:#D55E00;color:#fff}.warn{background:#E69F00}"
         ".new,.removed,.skipped{background:#eee}")


def document(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{body}</body></html>\n")


def table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    def opening(i: int) -> str:
        return f'<tr class="{html.escape(classes[i])}">' if classes and classes[i] else "<tr>"

    body = "".join(opening(i) + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def comparison_html(comparison: Any, columns: list[str], **_: Any) -> str:
    """The compare table (the same cells as the Markdown output) and, with matplotlib,
    the MACs-vs-params plot inline."""
    from ..formats.comparison import footer, header, text_cell, title

    rows = [[text_cell(row, c) for c in columns] for row in comparison.rows]
    body = (f'<p class="sub">{html.escape(header(comparison))}</p>'
            + table([title(c) for c in columns], rows)
            + "".join(f"<p>{html.escape(line)}</p>" for line in footer(comparison)))
    plot = _plot_svg(comparison) if len(comparison.rows) > 1 else ""
    return document("cnncost compare", body + plot)


def _plot_svg(comparison: Any) -> str:
    from ..comparison.plot import PlotUnavailable, plot

    try:
        out = io.StringIO()
        plot(comparison, out, format="svg")
    except PlotUnavailable:
        return "<p class=\"sub\">(install matplotlib for the plot)</p>"
    text = out.getvalue()
    return text[text.index("<svg"):]


def gate_html(result: Any, **_: Any) -> str:
    """The gate report: verdict, the table (failures and warnings highlighted, the status
    also written out), the notes."""
    from ..gate.check import COLUMNS, cells, headline

    rows = [cells(row) for row in result.rows]
    body = (f'<p class="sub">{html.escape(result.budget_file)}</p>'
            f"<p><b>gate {html.escape(headline(result))}</b></p>"
            + table(list(COLUMNS), rows, [row.status for row in result.rows])
            + "".join(f"<p>{html.escape(n)}</p>" for n in result.notes))
    return document("cnncost gate", body)
