"""Results of the benchmark run: samples, medians, ratios, targets, and their text and Markdown."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    fmt: str = "{:,.0f}"
    ratio: bool = True  # print "yc_runs x" for it

    def show(self, value: float) -> str:
        return self.fmt.format(value)


@dataclass
class Section:
    key: str
    title: str
    clients: List[str]  # the first one is the yc_runs row the others are compared with
    metrics: List[Metric]
    labels: Dict[str, str] = field(default_factory=dict)
    samples: Dict[str, Dict[str, List[float]]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    reps: int = 0
    error: Optional[str] = None
    seconds: float = 0.0

    def add(self, client: str, values: Dict[str, float]) -> None:
        per_client = self.samples.setdefault(client, {})
        for key, value in values.items():
            per_client.setdefault(key, []).append(value)

    def label(self, client: str) -> str:
        return self.labels.get(client, client)

    def values(self, client: str, key: str) -> List[float]:
        return self.samples.get(client, {}).get(key, [])

    def median(self, client: str, key: str) -> Optional[float]:
        values = self.values(client, key)
        return statistics.median(values) if values else None

    def advantage(self, client: str, metric: Metric) -> Optional[float]:
        """How many times better yc_runs is than ``client`` on ``metric`` (> 1: yc_runs better)."""
        mine = self.median(self.clients[0], metric.key)
        theirs = self.median(client, metric.key)
        if mine is None or theirs is None:
            return None
        top, bottom = (mine, theirs) if metric.higher_is_better else (theirs, mine)
        return top / bottom if bottom else None


@dataclass
class Target:
    name: str
    text: str  # what is compared, with the numbers
    ok: Optional[bool]  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "MISS")


def cell(section: Section, client: str, metric: Metric) -> Tuple[str, str]:
    """(median [min-max], yc_runs x) for one client and metric."""
    values = section.values(client, metric.key)
    if not values:
        return "—", ""
    median = statistics.median(values)
    text = metric.show(median)
    if len(values) > 1 and min(values) != max(values):
        text += " (%s-%s)" % (metric.show(min(values)), metric.show(max(values)))
    if not metric.ratio:
        return text, ""
    if client == section.clients[0]:
        return text, "1.00"
    advantage = section.advantage(client, metric)
    return text, "" if advantage is None else "%.2fx" % advantage


def _columns(section: Section) -> List[str]:
    heads = ["client"]
    for metric in section.metrics:
        heads.append(metric.label)
        if metric.ratio:
            heads.append("yc_runs x")
    return heads


def _rows(section: Section) -> List[List[str]]:
    rows = []
    for client in section.clients:
        if client not in section.samples:
            continue
        row = [section.label(client)]
        for metric in section.metrics:
            text, ratio = cell(section, client, metric)
            row.append(text)
            if metric.ratio:
                row.append(ratio)
        rows.append(row)
    return rows


LEGEND = ("Each cell: median (min-max) of interleaved repetitions. `yc_runs x`: how many "
          "times better yc_runs is than that client on the metric to its left "
          "(> 1: yc_runs better, < 1: worse).")


def text_report(sections: List[Section], targets: List[Target], header: List[str]) -> str:
    out: List[str] = []
    out.extend(header)
    out.append("")
    out.append(LEGEND.replace("`", ""))
    for section in sections:
        out.append("")
        out.append("== %s ==" % section.title)
        if section.error:
            out.append("  FAILED: %s" % section.error)
        heads = _columns(section)
        rows = _rows(section)
        widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
        for row in [heads, *rows]:
            out.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                        for i, (c, w) in enumerate(zip(row, widths))))
        for note in section.notes:
            out.append("  * " + note)
    out.append("")
    out.append("== Targets ==")
    for target in targets:
        out.append("  %-4s  %-40s %s" % (target.verdict, target.name, target.text))
    return "\n".join(out) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_report(sections: List[Section], targets: List[Target], header: List[str]) -> str:
    out: List[str] = ["## Benchmarks", ""]
    out.extend(header)
    out.append("")
    out.append(LEGEND)
    out.append("")
    out.append("| target | result | numbers |")
    out.append("|---|---|---|")
    for target in targets:
        out.append("| %s | **%s** | %s |" % (_md_escape(target.name), target.verdict,
                                          _md_escape(target.text)))
    for section in sections:
        out.append("")
        out.append("### %s" % section.title)
        out.append("")
        if section.error:
            out.append("**FAILED:** %s" % _md_escape(section.error))
            out.append("")
        heads = _columns(section)
        out.append("| " + " | ".join(_md_escape(h) for h in heads) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|")
        for row in _rows(section):
            out.append("| " + " | ".join(_md_escape(c) for c in row) + " |")
        if section.notes:
            out.append("")
            for note in section.notes:
                out.append("- " + note)
    return "\n".join(out) + "\n"
