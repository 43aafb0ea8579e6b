"""Pure figure functions: DataFrames from `app.tables` in, plotly figures out (no Gradio, no store).

Built with graph_objects rather than plotly.express: it is several times faster, which
matters because a figure is rebuilt on every filter change.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.stats_view import error_bars, interval_text
from app.tables import value_columns
from storage.vocabulary import SOURCES, STORED_META_TASKS, TEXT_META_TASK

# What each source's numbers are; the demo caveat is shown wherever demo numbers are drawn.
SOURCE_NOTES = {
    "paper": "paper: the published 7-8B checkpoints on MMEB (Tables 1-4)",
    "pipeline": "pipeline: runs trained and evaluated by this code",
    "demo": "demo: tiny models on the built-in benchmark — not comparable in absolute terms",
    "mteb": "mteb: results imported from MTEB result files (`vlmembed import`)",
    "vlm2vec": "vlm2vec: results imported from VLM2Vec score files or its leaderboard report (`vlmembed import`)",
    "baseline": "baseline: measured chance, a blind text-only prior and untrained miniatures (`vlmembed baselines`)",
}
# One hue family per paradigm, so AR vs diffusion reads at a glance.
PALETTES = {
    "autoregressive": ["#1d4ed8", "#60a5fa", "#1e3a8a", "#93c5fd", "#3b82f6", "#172554"],
    "diffusion": ["#ea580c", "#fdba74", "#9a3412", "#f97316", "#fed7aa", "#7c2d12"],
    "baseline": ["#6b7280", "#9ca3af", "#374151", "#d1d5db"],  # grey: not a model under study
    "dual-encoder": ["#0f766e", "#5eead4", "#134e4a", "#14b8a6"],  # teal: CLIP-style baselines, beside both paradigms
}
BAR_TEXT = dict(textposition="outside", cliponaxis=False)  # values above bars, never cut off
SPLIT_COLOURS = {"in-domain": "#475569", "OOD": "#f59e0b", "all": "#0f766e"}
TOP_LEGEND = dict(orientation="h", yanchor="bottom", y=1.14, xanchor="right", x=1)
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=130, b=50), legend=dict(orientation="h", y=-0.15),
              font=dict(size=12))


def _one_decimal(value) -> str:
    return "" if pd.isna(value) else f"{value:.1f}"


def _panel_title(source: str, n_panels: int) -> str:
    """Bold source name over its note, wrapped so that narrow panels do not cut it off."""
    name, _, rest = SOURCE_NOTES.get(source, source).partition(": ")
    lines = textwrap.wrap(rest, max(36, 120 // n_panels))
    return "<br>".join([f"<b>{name}</b>", *(f"<sup>{line}</sup>" for line in lines)])


def _panel_widths(frame: pd.DataFrame, sources: list[str]) -> list[float]:
    """Wider panels for sources with more bars (never below a third of the widest)."""
    bars = [max(len(frame[frame["source"] == s][["meta_task", "label"]].drop_duplicates()), 1) for s in sources]
    weights = [max(b, max(bars) / 3) for b in bars]
    return [w / sum(weights) for w in weights]


def _sources(frame: pd.DataFrame) -> list[str]:
    present = set(frame["source"])
    return [s for s in SOURCES if s in present] + sorted(present - set(SOURCES))


def model_colours(frame: pd.DataFrame) -> dict[str, str]:
    """A colour per label, shaded within its paradigm's hue family, stable across panels."""
    colours: dict[str, str] = {}
    for paradigm in PALETTES:
        labels = list(dict.fromkeys(frame.loc[frame["paradigm"] == paradigm, "label"]))
        for i, label in enumerate(labels):
            colours[label] = PALETTES[paradigm][i % len(PALETTES[paradigm])]
    return colours


def _intervals(rows: pd.DataFrame, note: str = "interval_note") -> list[str]:
    """Each bar's interval as hover text, or why it has none (frames without intervals: nothing)."""
    if "lower" not in rows:
        return [""] * len(rows)
    notes = rows[note] if note in rows else pd.Series("", index=rows.index)
    return [interval_text(lo, hi, n if pd.isna(lo) else "") + ("" if pd.isna(lo) or note != "how" else f" ({n})")
            for lo, hi, n in zip(rows["lower"], rows["upper"], notes, strict=True)]


def message_figure(text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig.update_layout(template="plotly_white", height=260)


def meta_task_bars(averages: pd.DataFrame, title: str = "Average Precision@1 per meta-task") -> go.Figure:
    """The paper's Figure 1: one bar per model within each meta-task; one panel per source."""
    if averages.empty:
        return message_figure("No runs match: pick another source.")
    sources = _sources(averages)
    colours = model_colours(averages)
    fig = make_subplots(rows=1, cols=len(sources), subplot_titles=[_panel_title(s, len(sources)) for s in sources],
                        column_widths=_panel_widths(averages, sources), horizontal_spacing=0.05)
    shown_in_legend: set[str] = set()
    for col, source in enumerate(sources, start=1):
        part = averages[averages["source"] == source]
        for label, rows in part.groupby("label", sort=False):
            fig.add_bar(x=rows["meta_task"], y=rows["average"], name=label, legendgroup=label,
                        marker_color=colours.get(label), text=rows["average"].map(_one_decimal), **BAR_TEXT,
                        customdata=np.column_stack([rows["n_datasets"], rows["paradigm"], _intervals(rows)]),
                        error_y=error_bars(rows, "average"),
                        hovertemplate=f"{label}<br>%{{x}}: %{{y:.1f}}<br>%{{customdata[0]}} datasets, "
                                      "%{customdata[1]}<br>%{customdata[2]}<extra></extra>",
                        showlegend=label not in shown_in_legend, row=1, col=col)
            shown_in_legend.add(label)
        # Headroom over the tallest bar (or interval): its value label stays under the panel's title.
        fig.update_yaxes(range=[0, _headroom(part, ["average", "upper"])], row=1, col=col)
    fig.update_xaxes(categoryorder="array", categoryarray=list(STORED_META_TASKS))
    fig.update_yaxes(title_text="Precision@1 (%)", col=1, rangemode="tozero")
    return fig.update_layout(title=title, barmode="group", height=460, **LAYOUT)


def gap_bars(gaps: pd.DataFrame) -> go.Figure:
    """Best AR minus best diffusion average per meta-task, for all, in-domain and OOD datasets."""
    if gaps.empty:
        return message_figure("Needs at least one autoregressive and one diffusion model.")
    sources = _sources(gaps)
    fig = make_subplots(rows=1, cols=len(sources), subplot_titles=[_panel_title(s, len(sources)) for s in sources],
                        horizontal_spacing=0.05)
    for col, source in enumerate(sources, start=1):
        part = gaps[gaps["source"] == source]
        for split, rows in part.groupby("split", sort=False):
            fig.add_bar(x=rows["meta_task"], y=rows["gap"], name=split, legendgroup=split,
                        marker_color=SPLIT_COLOURS.get(split), text=rows["gap"].map("{:+.1f}".format),
                        **BAR_TEXT, customdata=np.column_stack([rows[["ar_model", "ar", "diffusion_model",
                                                                      "diffusion"]], _intervals(rows, "how")]),
                        error_y=error_bars(rows, "gap"),
                        hovertemplate="%{x}, " + split + ": %{customdata[0]} %{customdata[1]:.1f} vs "
                                      "%{customdata[2]} %{customdata[3]:.1f}<br>%{customdata[4]}<extra></extra>",
                        showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(categoryorder="array", categoryarray=list(STORED_META_TASKS))
    fig.update_yaxes(title_text="points (> 0: AR ahead)", col=1, zeroline=True, zerolinecolor="#334155")
    return fig.update_layout(title="Best AR − best diffusion model, per meta-task", barmode="group", height=430,
                             **LAYOUT)


def absent_note(source: str, meta_task: str) -> str:
    """Why a panel has no bar: the paper has no text meta-task at all, which is not a score of 0."""
    if source == "paper" and meta_task == TEXT_META_TASK:
        return "not in the paper"
    return f"no {source} runs on {meta_task}"


def id_ood_bars(averages: pd.DataFrame) -> go.Figure:
    """In-domain vs OOD average per model: one column per meta-task, one row per source."""
    if averages.empty:
        return message_figure("No runs match: pick another source.")
    sources = _sources(averages)
    tasks = [t for t in STORED_META_TASKS if t in set(averages["meta_task"])]
    fig = make_subplots(rows=len(sources), cols=len(tasks), column_titles=tasks,
                        row_titles=[s for s in sources] if len(sources) > 1 else None,
                        horizontal_spacing=0.05, vertical_spacing=0.18)
    for row, source in enumerate(sources, start=1):
        for col, task in enumerate(tasks, start=1):
            part = averages[(averages["source"] == source) & (averages["meta_task"] == task)]
            if part.empty:
                n = (row - 1) * len(tasks) + col  # plotly numbers subplot axes x, x2, x3 ... row by row
                suffix = n if n > 1 else ""
                xdom, ydom = fig.layout[f"xaxis{suffix}"].domain, fig.layout[f"yaxis{suffix}"].domain
                # Paper coordinates: an empty subplot's own axes are never drawn, so they cannot anchor text.
                fig.add_annotation(text=absent_note(source, task), showarrow=False, xref="paper", yref="paper",
                                   x=sum(xdom) / 2, y=sum(ydom) / 2, font=dict(color="#64748b"))
                fig.update_xaxes(visible=False, row=row, col=col)
                fig.update_yaxes(visible=False, row=row, col=col)
                continue
            for split, column in (("in-domain", "in_domain"), ("OOD", "ood")):
                fig.add_bar(x=part["label"], y=part[column], name=split, legendgroup=split,
                            marker_color=SPLIT_COLOURS[split], text=part[column].map(_one_decimal), **BAR_TEXT,
                            error_y=error_bars(part, column, prefix=f"{column}_"),
                            hovertemplate=f"%{{x}}, {task} {split}: %{{y:.1f}}<extra></extra>",
                            showlegend=row == 1 and col == 1, row=row, col=col)
    # Headroom over the tallest bar (or interval), so its value label stays under the meta-task's title.
    fig.update_yaxes(range=[0, _headroom(averages, ["in_domain", "ood", "in_domain_upper", "ood_upper"])])
    fig.update_yaxes(title_text="Precision@1 (%)", col=1)
    notes = " · ".join(SOURCE_NOTES[s] for s in sources if s == "demo")
    title = "In-domain vs out-of-domain average" + (f"<br><sup>{notes}</sup>" if notes else "")
    # The legend goes above the panels: below them it would sit on the rotated model names.
    return fig.update_layout(title=title, barmode="group", height=330 * len(sources) + 80,
                             **{**LAYOUT, "legend": TOP_LEGEND})


def _headroom(frame: pd.DataFrame, columns: list[str], factor: float = 1.18) -> float:
    """The y-axis top: the largest value of `columns` (those present) plus room for the label above it."""
    values = pd.concat([pd.to_numeric(frame[c], errors="coerce") for c in columns if c in frame], ignore_index=True)
    top = values.max() if len(values) else float("nan")
    return float(top * factor) if pd.notna(top) and top > 0 else 1.0


def heatmap(table: pd.DataFrame, metric: str) -> go.Figure:
    """The per-dataset table as colour: datasets down, series across."""
    cols = value_columns(table)
    if table.empty or not cols:
        return message_figure("No scores match these filters.")
    z = table[cols].astype("float")
    fig = go.Figure(go.Heatmap(
        z=z.to_numpy(), x=cols, y=table["dataset"], colorscale="Blues", zmin=0, zmax=100,
        text=z.map(_one_decimal).to_numpy(), texttemplate="%{text}", colorbar=dict(title=metric),
        customdata=table[["meta_task", "split"]].to_numpy()[:, None, :].repeat(len(cols), axis=1),
        hovertemplate="%{y} (%{customdata[0]}, %{customdata[1]})<br>%{x}: %{z:.1f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return fig.update_layout(template="plotly_white", height=max(300, 22 * len(table) + 120),
                             margin=dict(l=140, r=20, t=30, b=80))


def delta_bars(delta: pd.DataFrame, label_a: str, label_b: str) -> go.Figure:
    """Per-dataset difference b - a, green where b is higher."""
    if delta.empty:
        return message_figure("No dataset in common: pick two runs evaluated on the same benchmark.")
    colours = ["#16a34a" if d > 0 else "#dc2626" for d in delta["delta"]]
    real = delta["real"] if "real" in delta else pd.Series(False, index=delta.index)  # survives Holm at 0.05
    error = error_bars(delta, "delta")
    fig = go.Figure(go.Bar(
        x=delta["delta"], y=delta["dataset"], orientation="h", marker_color=colours,
        marker_pattern_shape=["" if r else "/" for r in real],  # hatched: not shown to be real
        error_x=error,
        text=[f"{d:+.1f}{' ✓' if r else ''}" for d, r in zip(delta["delta"], real, strict=True)], **BAR_TEXT,
        customdata=delta[["a", "b", "meta_task"]],
        hovertemplate=(f"%{{y}} (%{{customdata[2]}})<br>{label_a}: %{{customdata[0]:.1f}}<br>"
                       f"{label_b}: %{{customdata[1]:.1f}}<extra></extra>"),
    ))
    fig.update_yaxes(autorange="reversed")
    title = f"{label_b} − {label_a} (points)"
    if error is not None:
        title += "<br><sup>95% intervals; ✓ solid: survives Holm at 0.05; hatched: not shown to differ</sup>"
    return fig.update_layout(title=title, template="plotly_white",
                             height=max(300, 22 * len(delta) + 120), margin=dict(l=140, r=40, t=50, b=40))
