"""report.html: the whole report in one self-contained page (figures embedded as base64 PNG,
styles inline, no script, nothing fetched), readable offline and in the MLflow UI's
artifact view."""

from __future__ import annotations

import base64
from html import escape

import pandas as pd

from .tables import INTERVAL, LEGEND, MEANING, by_condition, display_table, pruned_line

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222;
       line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 1.8em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td.text { text-align: left; }
tr.best { background: #dff2df; font-weight: 600; } tr.tied { background: #eef4fb; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0 1.2em; }
.note { color: #555; font-size: 0.92em; } code { background: #f4f4f4; padding: 0 0.2em; }
"""


def page(title: str, sections: list[str]) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{escape(title)}</h1>\n" + "\n".join(sections) + "\n</body>\n</html>\n")


def paragraph(text: str, css: str = "") -> str:
    return f"<p{css_class(css)}>{escape(text)}</p>"


def css_class(name: str) -> str:
    return f' class="{name}"' if name else ""


def figure(name: str, png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{escape(caption)}\">"
            f"<figcaption class=\"note\">{escape(name)}</figcaption></figure>")


def table(frame: pd.DataFrame, row_classes: list[str] = ()) -> str:
    """A DataFrame of strings as an HTML table; text columns left-aligned."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for k, row in enumerate(frame.itertuples(index=False)):
        cells = "".join(f"<td>{escape(str(v))}</td>" if is_number(v)
                        else f"<td class=\"text\">{escape(str(v))}</td>" for v in row)
        css = row_classes[k] if k < len(row_classes) and row_classes[k] else ""
        rows.append(f"<tr{css_class(css)}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def is_number(value) -> bool:
    text = str(value).split(" ")[0].lstrip("<-").rstrip("%")
    try:
        float(text)
    except ValueError:
        return False
    return True


def settings_sections(summary: pd.DataFrame, design) -> list[str]:
    sections = []
    for title, rows in by_condition(summary, design):
        classes = [v if v in ("best", "tied") else "" for v in rows.verdict]
        sections += [f"<h3>{escape(title)}</h3>", table(display_table(rows, design), classes)]
    return sections + [paragraph(LEGEND, "note")]


def importance_section(shares: pd.DataFrame) -> list[str]:
    if shares.empty:
        return [paragraph("Too few finished runs, or nothing they varied, to say what matters.")]
    frame = pd.DataFrame({"parameter": shares.parameter,
                          "share of the variance of true_mse": [
                              f"{100 * s:.0f}%" for s in shares.share],
                          "method": shares.method})
    return [table(frame)]


def report_page(report, pngs: dict[str, bytes], captions: dict[str, str]) -> str:
    """The page of a Report (see report/__init__.py); pngs: figure file name -> PNG bytes."""
    summary, design = report.summary, report.design
    counts = ", ".join(f"{int(summary[k].sum())} {k}" for k in
                       ("finished", "diverged", "crashed", "pruned") if summary[k].sum())
    sections = [
        paragraph(f"Parent run {report.parent_run_id}: {len(report.runs)} runs ({counts}), "
                  f"{len(summary)} settings, a {report.kind}. Conditions (compared within, "
                  f"never across): {', '.join(design.conditions) or 'none'}; choices: "
                  f"{', '.join(design.choices) or 'none'}; replication: seed."),
        "<h2>Settings, per condition</h2>",
        paragraph(f"{MEANING}. Each setting's true_mse is its {INTERVAL}; vs best is the "
                  "ratio of its geometric mean to the best's; p vs best is the Holm-adjusted p "
                  "of a paired t-test of log true_mse against the best setting over the seeds "
                  "both finished.", "note"),
        *settings_sections(summary, design),
        *(["<h2>Registered models</h2>", *(paragraph(line) for line in report.models)]
          if report.models else []),
        "<h2>What to try next</h2>",
        ("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in report.suggestions) + "</ul>"
         if report.suggestions else paragraph("Nothing to suggest.")),
        "<h2>What matters</h2>",
        *importance_section(report.importance),
    ]
    if "importance.png" in pngs:
        sections.append(figure("importance.png", pngs["importance.png"],
                               captions["importance.png"]))
    others = [name for name in pngs if name != "importance.png"]
    if others:
        sections.append("<h2>Figures</h2>")
        sections += [figure(name, pngs[name], captions[name]) for name in others]
    if report.pruned:
        sections.append(paragraph(pruned_line(report.runs) + "."))
    if report.reused:
        sections.append(paragraph(f"Reused runs: {len(report.reused)} recorded outside this "
                                  "sweep answer their (setting, seed), one run each: "
                                  + ", ".join(report.reused) + "."))
    return page(f"Sweep report: {report.name}", sections)

