"""Draw the benchmark chart from results.csv (run by run.py in the report venv).

    python chart.py results.csv chart.png [--title TITLE]

One panel per workload: horizontal bars of requests/s (W6: achieved rate
against the 500/s target; W7: p50 latency; W9, the failure storm: wall
time), plus panels of W5's peak RSS, W8's peak open descriptors and W9's
peak RSS. Clients that were n/a or failed get a labelled empty slot, never
a bar. In the requests/s panels, our clients' bars carry their ratios to
go-core (fastreq) and to go-floor, the bare net/http loop (fastreq and
go-core), each the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import csv
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OURS = {"fastreq", "fastreq-nobreaker", "fastreq_async", "go-core"}
CEILING = {"h2load", "wrk"}
FLOOR = "go-floor"  # the bare net/http loop


def color(client: str) -> str:
    if client in OURS:
        return "#1f77b4" if client != "go-core" else "#17becf"
    if client == FLOOR:
        return "#2ca02c"
    if client in CEILING:
        return "#7f7f7f"
    if client == "fastreq-orig":
        return "#d62728"
    return "#ff7f0e"


def num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def bars_of(group: list[dict], key: str, ratios: bool = False) -> list[tuple[str, float, str, str]]:
    """(client, value of column key, label for a missing value, ratios to
    show after the value) per row."""
    return [(r["client"], num(r.get(key)), "" if not math.isnan(num(r.get(key))) else (
        "n/a" if r["status"] == "n/a" else r["status"]), ratio_text(r) if ratios else "") for r in group]


def ratio_text(r: dict) -> str:
    """Our clients' req/s against go-core's and go-floor's: "0.97x core,
    0.91x floor" (nothing for the others, nor for a reference itself)."""
    if r["client"] not in OURS:
        return ""
    parts = []
    for col, name in (("vs_go_core", "core"), ("vs_go_floor", "floor")):
        v = num(r.get(col))
        if not math.isnan(v) and not (r["client"] == "go-core" and name == "core"):
            parts.append(f"{v:.2f}x {name}")
    return ", ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("png")
    p.add_argument("--title", default="fastreq benchmark")
    a = p.parse_args()
    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    workloads: dict[str, list[dict]] = {}
    for r in rows:
        workloads.setdefault(r["workload"], []).append(r)

    panels: list[tuple[str, str, list[tuple[str, float, str, str]]]] = []
    for wid, group in workloads.items():
        mode = group[0]["mode"]
        n = int(group[0]["n"])
        hosts = group[0].get("hosts") or ""
        if mode == "rate":
            key, unit, title = "achieved_rate", "req/s achieved (target 500)", f"{wid}: rate limit 500/s"
        elif mode == "storm":
            key, unit, title = "elapsed_s", "wall time, s (lower is better)", f"{wid}: {n:,} GETs of a closed port"
        elif hosts:
            key, unit, title = "rps", "requests/s (higher is better)", f"{wid}: {n:,} GETs over {int(hosts):,} hosts"
            if wid.startswith("W2-tls"):
                title = f"{wid}: {n:,} GETs over {int(hosts):,} HTTPS hosts"
        elif mode == "serial":
            key, unit, title = "p50_ms", "p50 latency, ms (lower is better)", f"{wid}: {n:,} serial GETs"
        else:
            key, unit, title = "rps", "requests/s (higher is better)", f"{wid}: {n:,} GETs {group[0]['proto']}, {mode}"
        panels.append((title, unit, bars_of(group, key, ratios=key == "rps")))
        if wid == "W5":
            panels.append((f"W5: peak RSS, {n:,} results kept", "MiB (lower is better)", bars_of(group, "peak_rss_mib")))
        if hosts:
            panels.append((f"{wid}: peak open descriptors, {int(hosts):,} hosts", "descriptors", bars_of(group, "peak_fds")))
        if mode == "storm":
            panels.append((f"{wid}: peak RSS, failure storm", "MiB (lower is better)", bars_of(group, "peak_rss_mib")))

    cols = 3
    nrows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(6.2 * cols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, unit, bars) in zip(axes.flat, panels):
        names = [b[0] for b in bars][::-1]
        vals = [0 if math.isnan(b[1]) else b[1] for b in bars][::-1]
        labels = [b[2] for b in bars][::-1]
        extras = [b[3] for b in bars][::-1]
        ax.barh(names, vals, color=[color(nm) for nm in names])
        top = max(vals) if any(vals) else 1
        for y, (v, lab, extra) in enumerate(zip(vals, labels, extras)):
            if lab:
                ax.text(top * 0.01, y, lab, va="center", fontsize=8, color="#555555")
            else:
                txt = f"{v:,.0f}" if v >= 100 else f"{v:,.3g}"
                if extra:
                    txt += f"  ({extra})"
                ax.text(v + top * 0.01, y, txt, va="center", fontsize=8 if not extra else 7)
        ax.set_xlim(0, top * (1.6 if any(extras) else 1.22))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(a.title, fontsize=12)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
