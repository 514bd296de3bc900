"""Presentation of `crm.Table` in notebooks (`_repr_html_`)."""

from __future__ import annotations

import html
from typing import Any

from crm._crm import CrmError

#: Rows shown by a notebook's rendering of a `crm.Table`.
PREVIEW_ROWS = 10


def _cell(value: Any) -> str:
    if value is None:
        return '<td style="color: #888">null</td>'
    return f"<td>{html.escape(str(value))}</td>"


def repr_html(table: Any) -> str:
    """The table's columns and types, then its first rows (only those are
    read), as an HTML table; every value is escaped."""
    try:
        columns, rows = table._preview(PREVIEW_ROWS)
    except CrmError as e:
        return f"<p>crm.Table {html.escape(table.name)}: {html.escape(str(e))}</p>"
    head = "".join(
        f"<th>{html.escape(name)}<br><small>{html.escape(kind)}</small></th>"
        for name, kind in columns
    )
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    more = "" if len(rows) < PREVIEW_ROWS else f"<p>first {PREVIEW_ROWS} rows</p>"
    return (
        f"<div><p>crm.Table <b>{html.escape(table.name)}</b></p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}</div>"
    )
