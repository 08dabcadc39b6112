"""The HTML both report pages share: the style sheet, cells and tables, every string escaped."""

from __future__ import annotations

import math
from html import escape
from typing import Any

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; overflow-wrap: anywhere; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { margin-bottom: .3em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; font-weight: 600; } td.text, th.text { text-align: left; }
td.text { overflow-wrap: break-word; } td.message { min-width: 16em; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; display: block; }
.linked { position: relative; display: inline-block; max-width: 100%; }
.linked svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
.linked polyline { fill: none; stroke: transparent; stroke-width: 9px; vector-effect: non-scaling-stroke; }
.linked rect { fill: transparent; }
.linked a:hover polyline { stroke: rgba(255, 160, 0, .5); } .linked a:hover rect { fill: rgba(255, 160, 0, .25); }
figcaption { font-size: .9em; color: #444; max-width: 60em; }
.warn { background: #fff4e0; border-left: 4px solid #e0a000; padding: .4em .8em; overflow-wrap: anywhere; }
.note { color: #555; font-size: .9em; overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 1.8em; height: .55em; border-radius: 2px; }
.status-diverged { color: #c00; font-weight: bold; } .status-invalid, .status-error, .status-failed { color: #800; }
"""


def fmt(v: Any) -> str:
    import pandas as pd

    if v is None or v is pd.NA:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}"
    return str(v)


def breakable(text: Any, longest: int = 20) -> str:
    """``text`` escaped, with places to break a line after _ / = and within any longer unbroken stretch,
    so that a table of long names still fits the page (and breaks them where it reads well)."""
    out, stretch = [], 0
    for c in str(text):
        out.append(escape(c))
        stretch = 0 if c.isspace() else stretch + 1
        if c in "_/=," or stretch >= longest:
            out.append("<wbr>")
            stretch = 0
    return "".join(out)


def table(df: Any, columns: list[tuple[str, Any, str]]) -> str:
    head = "".join(f"<th class='{cls}'>{escape(name)}</th>" for name, _, cls in columns)
    body = ["<tr>" + "".join(f"<td class='{cls}'>{cell(row)}</td>" for _, cell, cls in columns) + "</tr>"
            for row in df.itertuples(index=False)]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def frame_table(df: Any, text_columns: set[str]) -> str:
    """Every column of ``df`` as it is, the ``text_columns`` aligned as text."""
    return table(df, [(str(c), lambda row, i=i: breakable(fmt(row[i])), "text") if c in text_columns else
                      (str(c), lambda row, i=i: escape(fmt(row[i])), "") for i, c in enumerate(df.columns)])
