"""The monthly report as one self-contained HTML page: the figures, a cost breakdown, and the month
on the break-even chart (inline SVG — no scripts, no fetched assets, so it opens anywhere and can be
attached to a ticket as it is).

The break-even chart plots monthly cost against monthly audio hours: the metered API's line (audio
minutes × its price), the fleet's line (the month's fixed costs plus GPU hours at the measured
real-time factor and this month's utilization, priced at the spot price), a GPU's capacity for the
month (real-time factor × hours in the month) and this month's point. Where the lines cross is the
volume above which self-hosting pays. Pure: it reads only the report's figures.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from policies.report import markdown

WIDTH, HEIGHT, PAD = 720, 360, 56
MONTH_HOURS = 730.0  # the mean hours in a month


def break_even_lines(report: Mapping[str, Any]) -> dict[str, float] | None:
    """The chart's figures, or None when the month measured no fleet throughput to draw it from."""
    rtf = report["measured_audio_rtf"]
    if not rtf:
        return None
    utilization = report["utilization"] or 1.0
    per_audio_hour_api = 60 * report["prices"]["api_price_per_audio_minute"]
    per_audio_hour_gpu = report["prices"]["spot_price_per_hour"] / (rtf * utilization)
    fixed = sum(report["cost_usd"]["fixed"].values())
    margin = per_audio_hour_api - per_audio_hour_gpu
    audio = report["work"]["audio_seconds"]
    return {"fixed_usd": fixed, "api_usd_per_audio_hour": per_audio_hour_api,
            "fleet_usd_per_audio_hour": per_audio_hour_gpu, "utilization": utilization,
            "break_even_audio_hours": fixed / margin if margin > 0 else float("inf"),
            "gpu_capacity_audio_hours": rtf * MONTH_HOURS,
            "month_audio_hours": (audio["fleet"] + audio["api"]) / 3600,
            "month_total_usd": report["cost_usd"]["total"] if report["cost_usd"]["total"] is not None else -1.0}


def _chart(lines: Mapping[str, float]) -> str:
    finite = [v for v in (lines["break_even_audio_hours"], lines["month_audio_hours"]) if v != float("inf")]
    x_max = max([*finite, 1.0]) * 1.6
    fleet_at = lines["fixed_usd"] + lines["fleet_usd_per_audio_hour"] * x_max
    y_max = max(lines["api_usd_per_audio_hour"] * x_max, fleet_at, lines["month_total_usd"], 1.0) * 1.1

    def x(hours: float) -> float:
        return round(PAD + (WIDTH - 2 * PAD) * hours / x_max, 1)

    def y(usd: float) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * usd / y_max, 1)

    parts = [f'<svg id="break-even" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="monthly cost against audio hours">',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#444"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#444"/>',
             f'<text x="{WIDTH / 2}" y="{HEIGHT - 16}" text-anchor="middle">audio hours this month '
             f'(axis to {x_max:,.0f})</text>',
             f'<text x="14" y="{PAD - 16}">USD per month (axis to {y_max:,.0f})</text>',
             f'<line id="api-line" x1="{x(0)}" y1="{y(0)}" x2="{x(x_max)}" '
             f'y2="{y(lines["api_usd_per_audio_hour"] * x_max)}" stroke="#c0392b" stroke-width="2"/>',
             f'<line id="fleet-line" x1="{x(0)}" y1="{y(lines["fixed_usd"])}" x2="{x(x_max)}" y2="{y(fleet_at)}" '
             f'stroke="#2471a3" stroke-width="2"/>']
    if lines["gpu_capacity_audio_hours"] <= x_max:
        cap = x(lines["gpu_capacity_audio_hours"])
        parts.append(f'<line id="gpu-capacity" x1="{cap}" y1="{PAD}" x2="{cap}" y2="{HEIGHT - PAD}" '
                     'stroke="#7d3c98" stroke-dasharray="4 4"/>')
    if lines["month_total_usd"] >= 0:
        parts.append(f'<circle id="this-month" cx="{x(lines["month_audio_hours"])}" '
                     f'cy="{y(lines["month_total_usd"])}" r="6" fill="#117a65" '
                     f'data-audio-hours="{lines["month_audio_hours"]:.4f}" '
                     f'data-total-usd="{lines["month_total_usd"]:.2f}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(lines: Mapping[str, float]) -> str:
    crossing = lines["break_even_audio_hours"]
    where = ("never: a GPU-hour costs more than the API for the audio it does" if crossing == float("inf")
             else f"{crossing:,.1f} audio hours a month")
    return ("<ul class=\"legend\">"
            f"<li><span style=\"color:#c0392b\">■</span> metered API: ${lines['api_usd_per_audio_hour']:.3f} "
            "per audio hour</li>"
            f"<li><span style=\"color:#2471a3\">■</span> the fleet: ${lines['fixed_usd']:,.2f} fixed + "
            f"${lines['fleet_usd_per_audio_hour']:.4f} per audio hour (at {lines['utilization']:.0%} utilization)</li>"
            f"<li><span style=\"color:#7d3c98\">■</span> one GPU's capacity: "
            f"{lines['gpu_capacity_audio_hours']:,.0f} audio hours a month</li>"
            f"<li><span style=\"color:#117a65\">●</span> this month</li>"
            f"<li>break-even: <strong id=\"break-even-hours\">{html.escape(where)}</strong></li></ul>")


def _bars(report: Mapping[str, Any]) -> str:
    cost = report["cost_usd"]
    items = [("GPU compute", cost["gpu_compute"]), ("metered API", cost["api"]), *cost["fixed"].items()]
    known = [(name, value) for name, value in items if value is not None]
    top = max([value for _, value in known] + [1e-9])
    rows = [f'<svg id="cost-lines" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{28 * len(known) + 8}">']
    for index, (name, value) in enumerate(known):
        width = round((WIDTH - 260) * value / top, 1)
        rows.append(f'<text x="0" y="{28 * index + 20}">{html.escape(name)}</text>'
                    f'<rect class="cost" data-name="{html.escape(name)}" data-usd="{value:.2f}" x="160" '
                    f'y="{28 * index + 6}" width="{width}" height="18" fill="#5d6d7e"/>'
                    f'<text x="{170 + width}" y="{28 * index + 20}">${value:,.2f}</text>')
    rows.append("</svg>")
    return "".join(rows)


def html_page(report: Mapping[str, Any]) -> str:
    lines = break_even_lines(report)
    chart = (_chart(lines) + _legend(lines) if lines is not None
             else "<p id=\"no-chart\">No fleet work was measured this month, so there is no real-time factor to "
                  "draw the break-even from.</p>")
    figures = html.escape(markdown(report))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>spotkit report, {html.escape(report['month'])}</title>"
            "<style>body{font:15px system-ui,sans-serif;max-width:760px;margin:2em auto;color:#222}"
            "pre{white-space:pre-wrap;background:#f6f6f6;padding:1em}svg text{font-size:12px}</style></head><body>"
            f"<h1>spotkit report, {html.escape(report['month'])}</h1>"
            f"<h2>The month on the break-even chart</h2>{chart}"
            f"<h2>Where the money went</h2>{_bars(report)}"
            f"<h2>The figures</h2><pre id=\"figures\">{figures}</pre></body></html>\n")
