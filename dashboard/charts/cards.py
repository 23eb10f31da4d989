"""HTML cards and tables: attacked words highlighted, adversarial examples, a structured method's step log."""

from __future__ import annotations

import html
from typing import Iterable

from dashboard.charts.common import DENSE_COLOR


HIGHLIGHT_ORIGINAL = "#f8c9c4"  # words the attack changed, in the original text (rose)
HIGHLIGHT_PERTURBED = "#fdd49e"  # their replacements, in the perturbed text (amber: never green, read as "good")


def highlight_html(text: str, spans: Iterable[Iterable[int]], color: str = HIGHLIGHT_ORIGINAL) -> str:
    """`text` as HTML with the character `spans` ([start, end) pairs) wrapped in <mark>.

    Every piece of `text` is escaped, so user text can never inject HTML; spans are sorted, clipped to
    the text and overlaps merged into the earlier span."""
    parts, pos = [], 0
    style = html.escape(f"background-color: {color}; padding: 0 2px; border-radius: 3px", quote=True)
    for start, end in sorted((int(a), int(b)) for a, b in spans):
        start, end = max(start, pos), min(end, len(text))
        if end <= start:
            continue
        parts.append(html.escape(text[pos:start]))
        parts.append(f'<mark style="{style}">{html.escape(text[start:end])}</mark>')
        pos = end
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


RESULT_COLORS = {"successful": "#E45756", "failed": "#54A24B", "skipped": "#7f7f7f"}
RESULT_HELP = {"successful": "the attack flipped a correct prediction",
               "failed": "the model stayed correct under attack",
               "skipped": "the model was already wrong on the clean text: nothing to attack"}


def adversarial_example_html(rec: dict, label_names: Iterable[str] = ()) -> str:
    """One attacked example as an HTML card: result, true label, original and perturbed text with the
    changed words highlighted, predictions with confidence before and after, queries. All text escaped."""
    names = list(label_names)

    def name(i: int) -> str:
        return html.escape(names[i] if 0 <= i < len(names) else str(i))

    kind = rec["result"]
    badge = (f'<span style="background:{RESULT_COLORS.get(kind, DENSE_COLOR)};color:white;padding:1px 8px;'
             f'border-radius:8px;font-size:0.85em" title="{html.escape(RESULT_HELP.get(kind, ""))}">'
             f'{html.escape(kind)}</span>')
    before = f"{name(rec['original_pred'])} ({rec['original_confidence']:.0%})"
    head = (f"{badge} &nbsp;<b>#{int(rec['idx'])}</b> &nbsp;true label: <b>{name(rec['label'])}</b>"
            f" &nbsp;·&nbsp; queries: {int(rec['queries'])}")
    text_style = "white-space: pre-wrap; margin: 4px 0"
    rows = [f'<div style="{text_style}"><span style="color:#666">original:</span> '
            f'{highlight_html(rec["text"], rec.get("original_spans") or [], HIGHLIGHT_ORIGINAL)}</div>']
    if rec.get("perturbed") is not None:
        rows.append(f'<div style="{text_style}"><span style="color:#666">perturbed:</span> '
                    f'{highlight_html(rec["perturbed"], rec.get("perturbed_spans") or [], HIGHLIGHT_PERTURBED)}'
                    "</div>")
        after = f"{name(rec['perturbed_pred'])} ({rec['perturbed_confidence']:.0%})"
        changed = len(rec.get("changed") or [])
        pred = (f"prediction: {before} &rarr; {after} after the attack"
                f" &nbsp;·&nbsp; {changed} of {int(rec['words'])} words changed")
    else:
        pred = f"prediction: {before}, already wrong; not attacked"
    return (f'<div style="font-size:0.95em">{head}{"".join(rows)}'
            f'<div style="color:#444;font-size:0.9em">{pred}</div></div>')


def log_tables(log: Iterable[dict]) -> list[list[dict]]:
    """A method's step log split into tables: runs of consecutive entries with the same fields (Kwon: the
    search, then one row per layer; PAT: one row per logged step, then its summary)."""
    tables: list[list[dict]] = []
    for entry in log:
        if tables and set(tables[-1][-1]) == set(entry):
            tables[-1].append(entry)
        else:
            tables.append([entry])
    return tables
