"""A self-contained HTML document: sections with a table of contents, tables and PNG figures.

Every figure is inlined as a PNG (so the HTML is one file) and, when the document has a figure
folder, also written there as PNG and SVG for papers (``fig03-forest.png``, ``.svg``).
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from migraine_bayes.model.labels import HEADERS, feature_label, humanise_text, model_label
from migraine_bayes.store import atomic

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { margin-top: 1.4em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.warn { color: #a00; font-weight: bold; } .meta { color: #555; font-size: 0.9em; }
section.box { background: #f6f8fb; border: 1px solid #d7dde6; border-radius: 6px;
              padding: 0.2em 1.2em 0.8em; }
section.box h2 { margin-top: 0.6em; }
.headline { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.6em 0; }
.headline div { background: white; border: 1px solid #d7dde6; border-radius: 4px;
                padding: 0.3em 0.7em; min-width: 9em; }
.headline b { display: block; font-size: 1.25em; }
nav#toc ol { columns: 2; font-size: 0.95em; }
table.text td, table.text th, td.text, th.text { text-align: left; }
"""
PNG_DPI = 90  # inlined figures: sharp on screen, small files; the SVGs are for print


# a value and its interval in one cell: value column → (low, high) columns
INTERVALS = {"odds_ratio": ("or_low", "or_high"), "rate_ratio": ("rr_low", "rr_high"),
             "or_natural": ("or_natural_low", "or_natural_high"),
             "risk reduction": ("RRR low", "RRR high")}
# scores read to 3 decimals (AUC 0.831, Brier 0.112); everything else to 2 significant digits
# in intervals and ``digits`` significant digits alone
METRICS = ("auc", "brier", "ece", "auprc", "citl", "cal_slope", "cal_intercept", "brier_skill",
           "within_c", "log_score", "observed_expected", "prevalence", "net_benefit",
           "sensitivity", "specificity", "ppv", "npv", "f1", "auc_within")
MAX_COLUMNS = 8  # a wider table is split (its first column repeated): nothing cut in print


def _number(value: object, metric: bool, digits: int) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if metric:
            return f"{v:.3f}"
        if v == int(v) and abs(v) < 1e6:
            return f"{int(v):,}"
        return f"{v:.{digits}g}"
    return humanise_text(str(value))


def _header(column: str) -> str:
    base = column[:-len(" (90% interval)")] if column.endswith(" (90% interval)") else column
    text = HEADERS.get(base) or humanise_text(base.replace("_", " ").strip())
    text = text[:1].upper() + text[1:]
    return text + (" (90% interval)" if base != column else "")


def for_print(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A table as people read it.

    Human headers and labels, a value and its interval in one cell ("0.83 (0.80–0.87)"),
    scores to 3 decimals and other numbers to ``digits`` significant digits (2 in intervals),
    text cells with feature identifiers replaced by their labels.
    """
    cols = list(df.columns)
    pairs = {c: (lo, hi) for c in cols
             for lo, hi in [INTERVALS.get(c, (f"{c}_low", f"{c}_high"))]
             if lo in cols and hi in cols}
    inner = {x for lo_hi in pairs.values() for x in lo_hi}
    out = {}
    for c in cols:
        if c in inner:
            continue
        metric = str(c).lower() in METRICS or str(c).lower().startswith(("auc_", "brier_"))
        if c in pairs:
            lo, hi = pairs[c]
            d = 3 if metric else 2
            out[f"{c} (90% interval)"] = [
                "–" if not np.isfinite(_float(v)) else
                f"{_number(v, metric, d)} ({_number(a, metric, d)}–{_number(b, metric, d)})"
                for v, a, b in zip(df[c], df[lo], df[hi], strict=True)]
        elif c == "model" and df[c].dtype == object:
            out[c] = [model_label(v) for v in df[c]]
        elif c in ("feature", "source") and df[c].dtype == object:
            out[c] = [feature_label(str(v)) if isinstance(v, str) else "–" for v in df[c]]
        else:
            out[c] = [_number(v, metric, digits) for v in df[c]]
    table = pd.DataFrame(out)
    table.columns = [_header(str(c)) for c in table.columns]
    return table


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def split_wide(table: pd.DataFrame, max_columns: int = MAX_COLUMNS) -> list[pd.DataFrame]:
    """A table wider than ``max_columns`` as several, each repeating the first column."""
    if table.shape[1] <= max_columns:
        return [table]
    key, rest = table.columns[0], list(table.columns[1:])
    step = max_columns - 1
    return [table[[key, *rest[i:i + step]]] for i in range(0, len(rest), step)]


def slug(text: str) -> str:
    """A file- and anchor-safe name: lower case, words joined by '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


class Document:
    """An HTML report being written: add parts in order, then :meth:`render`.

    ``figure_dir``: where each figure is also written as PNG and SVG (none if ``None``).
    """

    def __init__(self, title: str, figure_dir: Path | None = None) -> None:
        self.title = title
        self.parts: list[str] = []
        self.sections: list[tuple[int, str, str]] = []  # (level, id, title)
        self.n_figures = 0
        self.n_tables = 0
        self.figure_dir = figure_dir
        self.exported: list[Path] = []

    def section(self, key: str, text: str, level: int = 2) -> None:
        """A heading with anchor ``key``, listed in the table of contents."""
        text = humanise_text(text)
        self.sections.append((level, key, text))
        self.parts.append(f'<h{level} id="{key}">{html.escape(text)}</h{level}>')

    def open_box(self, key: str, text: str) -> None:
        """Start a boxed section with anchor ``key`` (listed in the contents).

        End it with :meth:`close_box`.
        """
        self.sections.append((2, key, text))
        self.parts.append(f'<section class="box" id="{key}"><h2>{html.escape(text)}</h2>')

    def close_box(self) -> None:
        """End the boxed section."""
        self.parts.append("</section>")

    def heading(self, text: str, level: int = 3) -> None:
        """A heading that the table of contents does not list."""
        self.parts.append(f"<h{level}>{html.escape(humanise_text(text))}</h{level}>")

    def paragraph(self, text: str, css: str | None = None) -> None:
        """A paragraph of plain text (escaped)."""
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(humanise_text(text))}</p>")

    def raw(self, markup: str) -> None:
        """Markup built by the caller (it escapes what it inserts)."""
        self.parts.append(markup)

    def table(self, df: pd.DataFrame, digits: int = 3, index: bool = False,
              css: str | None = None, name: str | None = None) -> None:
        """A table for print (:func:`for_print`), its full machine version as CSV beside it.

        ``digits``: significant digits of plain numbers; ``name``: the CSV's name
        (``tabNN-<name>.csv`` in the figure folder).
        """
        self.n_tables += 1
        if index:
            df = df.reset_index()
        if self.figure_dir is not None:
            self.figure_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self.figure_dir / f"tab{self.n_tables:02d}-{slug(name or 'table')}.csv"
            atomic.write_text(path, df.to_csv(index=False))
            self.exported.append(path)
        for part in split_wide(for_print(df, digits)):
            self.parts.append(part.to_html(index=False, border=0, na_rep="–", classes=css,
                                           escape=True))

    def contents(self) -> None:
        """The place of the table of contents (filled in by :meth:`render`)."""
        self.parts.append("<!--toc-->")

    def figure(self, fig: Figure, caption: str, name: str) -> None:
        """Embed ``fig`` as a PNG with its caption (and export it as PNG and SVG); close it."""
        self.n_figures += 1
        key = f"fig{self.n_figures:02d}-{slug(name)}"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
        if self.figure_dir is not None:
            self.figure_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            for ext, dpi in (("png", 200), ("svg", None)):
                path = self.figure_dir / f"{key}.{ext}"
                with atomic.atomic_path(path) as tmp:  # private: figures name patients
                    fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight",
                                metadata={"Date": None} if ext == "svg" else None)
                self.exported.append(path)
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        caption = humanise_text(caption)
        self.parts.append(
            f'<figure id="{key}"><img class="report-figure" alt="'
            f'{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>Figure {self.n_figures}. {html.escape(caption)}</figcaption></figure>")

    def render(self) -> str:
        """The whole document."""
        items = "".join(f'<li><a href="#{key}">{html.escape(text)}</a></li>'
                        for level, key, text in self.sections if level == 2 and key != "summary")
        toc = f'<nav id="toc"><h2>Contents</h2><ol>{items}</ol></nav>'
        body = "\n".join(self.parts).replace("<!--toc-->", toc, 1)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
                f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")
