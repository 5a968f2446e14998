"""Charts drawn on the server as SVG with pygal, in a colour-blind-safe palette.

pygal writes each chart as one SVG with its stylesheet and a script inside. The dashboard's
pages forbid inline styles and scripts (Content-Security-Policy), so :func:`draw` takes the
script out, keeps the stylesheet apart (:func:`stylesheet` serves the same rules once, as a
file) and removes the tooltip layers that only a script would show. The full SVG, stylesheet
included, is kept for the PNG of the digest (CairoSVG) and for the self-contained HTML file.
Every chart is shown beside a table with the same numbers.
"""

from __future__ import annotations

import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pygal
from pygal.style import Style

# Okabe & Ito's palette, without its two light colours (orange, sky blue, yellow fall below a
# 3:1 contrast with the white chart background): every colour stays apart for the common forms
# of colour blindness and keeps WCAG's 3:1 for graphics (tests/dashboard/test_charts.py).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000")
BACKGROUND = "#ffffff"
INK = "#2a221c"
FONT = 'system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif'
SVG_NS = "http://www.w3.org/2000/svg"
KINDS = ("bar", "hbar", "line", "stacked")
# Drawn this wide and shown scaled to the page's column: on a 390 px phone the 16 px labels
# come out near 11 px, on a desktop column near their own size.
WIDTH = 480
LABEL_SIZE = 16
VALUE_TICKS = 5  # at most this many values on an axis, so their labels never touch
DOTTED_POINTS = 14  # a line of more points than this is drawn without a dot on each

ET.register_namespace("", SVG_NS)


def style() -> Style:
    return Style(
        colors=PALETTE,
        background=BACKGROUND,
        plot_background=BACKGROUND,
        foreground=INK,
        foreground_strong=INK,
        foreground_subtle="#5a4c41",
        font_family=FONT,
        label_font_size=LABEL_SIZE,
        major_label_font_size=LABEL_SIZE,
        legend_font_size=17,
        value_font_size=16,
        title_font_size=19,
        opacity="1",
        opacity_hover="1",
    )


@dataclass(frozen=True)
class Chart:
    """One chart: ``inline`` for a page (no style, no script), ``full`` for files and PNGs."""

    name: str
    title: str
    inline: str
    full: str

    def png(self, width: int = 720) -> bytes:
        import cairosvg

        data: bytes = cairosvg.svg2png(bytestring=self.full.encode("utf-8"), output_width=width)
        return data


def _wide_chars(text: str) -> int:
    """Characters drawn a full em wide (Chinese, Japanese, Korean)."""
    return sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")


def label_margin(labels: Sequence[str]) -> int:
    """What pygal's estimate of a label's width (0.6 em a character) leaves out for full-width
    characters, for the longest label: added to the left margin of a horizontal chart, or
    its Chinese labels run off the left edge."""
    return math.ceil(max((_wide_chars(t) for t in labels), default=0) * 0.4 * LABEL_SIZE)


def ticks(top: float, count: int = VALUE_TICKS, *, whole: bool = True) -> list[float]:
    """Round values from 0 to at least ``top``, at most ``count`` + 1 of them; ``whole``:
    counts, so no step below 1."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1, math.ceil(step))
    return [round(i * step, 10) for i in range(math.ceil(top / step - 1e-9) + 1)]


def _chart(kind: str, title: str, labels: Sequence[str], **config: Any) -> Any:
    classes = {
        "bar": pygal.Bar,
        "hbar": pygal.HorizontalBar,
        "line": pygal.Line,
        "stacked": pygal.StackedBar,
    }
    chart = classes[kind](
        style=style(),
        js=[],
        no_prefix=True,
        disable_xml_declaration=True,
        width=WIDTH,
        height=config.pop("height", 400),
        title=title,
        x_labels=list(labels),
        show_legend=config.pop("show_legend", True),
        legend_at_bottom=True,
        truncate_label=-1,
        truncate_legend=-1,
        print_values=False,
        x_label_rotation=config.pop("x_label_rotation", 0),
        **config,
    )
    return chart


_STYLE_TAG = re.compile(r"<style[^>]*>(.*?)</style>", re.S)


def _css_of(svg: str) -> str:
    found = _STYLE_TAG.search(svg)
    return _prefixed(found.group(1).replace("&gt;", ">") if found else "")


def _prefixed(rules: str) -> str:
    # no_prefix leaves the root rules with an empty selector; give them the chart's class
    return re.sub(r"(^|\n)\{", r"\1.pygal-chart{", rules)


def _strip(parent: ET.Element, rules: list[str]) -> None:
    """Take out, below ``parent``, what a page without scripts and inline styles cannot use:
    comments, the script, the stylesheet (its text goes to ``rules``), the tooltips and the
    layers only a script would show; and every inline style attribute."""
    for element in list(parent):
        tag = element.tag
        if not isinstance(tag, str):  # a comment
            parent.remove(element)
            continue
        if tag == "style":
            rules.append(element.text or "")
        hidden = "opacity: 0" in (element.get("style") or "")
        tooltip = "tooltip" in (element.get("class") or "").split()
        if tag in ("script", "style") or hidden or tooltip:
            parent.remove(element)
            continue
        if element.get("style"):
            del element.attrib["style"]
        _strip(element, rules)


def draw(chart: Any, name: str) -> Chart:
    """The chart's SVG from pygal's own tree (no text written and parsed back)."""
    root = chart.render_tree()
    title = str(chart.config.title or name)
    rules: list[str] = []
    _strip(root, rules)
    root.set("id", f"chart-{name}")
    root.set("role", "img")
    root.set("aria-label", title)
    root.set("preserveAspectRatio", "xMidYMid meet")
    inline = ET.tostring(root, encoding="unicode")
    css = _prefixed("".join(rules)).replace("&", "&amp;").replace("<", "&lt;")
    head, _, tail = inline.partition(">")
    full = f'{head}><style type="text/css">{css}</style>{tail}'
    return Chart(name, title, inline, full)


@cache
def stylesheet() -> str:
    """The rules every chart of :data:`KINDS` needs, once (served as /dashboard/charts.css)."""
    seen: list[str] = []
    for kind in KINDS:
        probe = _chart(kind, "probe", ["a"])
        for index in range(len(PALETTE)):  # pygal writes one colour rule per series
            probe.add(f"s{index}", [1])
        css = _css_of(str(probe.render(is_unicode=True)))
        for rule in css.split("}"):
            if rule.strip() and rule.strip() + "}" not in seen:
                seen.append(rule.strip() + "}")
    return "\n".join(seen) + "\n"


# --------------------------------------------------------------------------- the charts


def bars(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    horizontal: bool = False,
    stacked: bool = False,
    percent: bool = False,
    intervals: Sequence[Sequence[tuple[float, float] | None]] | None = None,
) -> Chart:
    kind = "stacked" if stacked else "hbar" if horizontal else "bar"
    config: dict[str, Any] = {"show_legend": len(series) > 1}
    if horizontal:
        config["height"] = max(260, 90 + 40 * len(labels) * max(1, len(series)))
    if percent:
        config["value_formatter"] = lambda v: f"{v:.0%}"
    tops = [i[1] for row in intervals or () for i in row if i is not None]
    tops += [v for _, values in series for v in values if v is not None]
    if stacked:  # the axis holds each bar's sum
        tops = [
            sum(v or 0 for _, values in series for v in values[i : i + 1])
            for i in range(len(labels))
        ]
    if tops:
        config["y_labels"] = ticks(max(max(tops), 0.01 if percent else 1), whole=not percent)
        config["range"] = (0, config["y_labels"][-1])
    if horizontal:
        config["margin_left"] = 20 + label_margin(
            labels
        )  # pygal draws the first label at the bottom: read top to bottom instead
        labels = list(reversed(labels))
        series = [(label, list(reversed(values))) for label, values in series]
        intervals = [list(reversed(row)) for row in intervals] if intervals else None
    chart = _chart(kind, title, labels, **config)
    for index, (label, values) in enumerate(series):
        points: list[Any] = []
        for position, value in enumerate(values):
            interval = intervals[index][position] if intervals else None
            if interval is None or value is None:
                points.append(value)
            else:
                points.append({"value": value, "ci": {"low": interval[0], "high": interval[1]}})
        chart.add(label, points)
    return draw(chart, name)


def lines(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
) -> Chart:
    rotate = 40 if len(labels) > 10 else 0
    top = max((v for _, values in series for v in values if v is not None), default=0.0)
    chart = _chart(
        "line",
        title,
        labels,
        x_label_rotation=rotate,
        # a dot per day is a tooltip target, and tooltips need a script the page does not
        # run: past two weeks the line alone (the table has every value); pygal then skips
        # some 1,000 elements a chart, two fifths of the page's drawing
        show_dots=len(labels) <= DOTTED_POINTS,
        dots_size=3,
        stroke_style={"width": 3},
        y_labels=ticks(max(top, 1)),
        range=(0, ticks(max(top, 1))[-1]),
    )
    if len(labels) > 8:  # a week's days at most, or the rotated labels run into each other
        chart.x_labels_major_every = 7 if len(labels) > 14 else 2
        chart.show_minor_x_labels = False
    for label, values in series:
        chart.add(label, list(values))
    return draw(chart, name)
