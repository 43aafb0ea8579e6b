"""The Alignment tab's pure parts: stored maps and metrics in, HTML maps / tables / figures out.

The maps are drawn as plain HTML (an SVG of dashed pair lines under absolutely placed
markers) rather than a plotly figure, because each marker's hover card shows the item's
thumbnail and text: CSS `:hover` reveals it, so no script and no server call is needed.
Projections come from the store (`vlmembed project`); nothing is projected here.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from storage import StoreReader

# Metrics shown (stored name -> column title), in the paper's order.
METRICS = {
    "paired_cosine_distance": "paired cos. distance",
    "modality_gap": "modality gap",
    "centroid_gap": "centroid gap",
    "alignment": "alignment",
    "uniformity": "uniformity",
    "i2t_recall@1": "i2t R@1",
    "t2i_recall@1": "t2i R@1",
    "q2t_recall@1": "q2t R@1",
    "t2q_recall@1": "t2q R@1",
}
LINE_METRICS = ["paired_cosine_distance", "modality_gap", "alignment", "uniformity"]
SIZE = 420  # map width and height in pixels
GRID_SIZE = 380  # four maps two by two, which fits a 1024 px wide page
PAD = 14
COLOURS = ("#1d4ed8", "#ea580c", "#0f766e", "#9333ea")  # model A, model B (then the grid's third and fourth)
AR, DIFFUSION = "autoregressive", "diffusion"
CSS = """
.vm-maps { display: flex; flex-wrap: wrap; gap: 16px; }
.vm-maps.vm-grid { display: grid; grid-template-columns: repeat(2, max-content); }
.vm-map { position: relative; border: 1px solid #e2e8f0; background: #fff; }
.vm-map svg { position: absolute; left: 0; top: 0; }
.vm-title { font-weight: 600; margin: 4px 0; max-width: 420px; }
.vm-pt { position: absolute; width: 9px; height: 9px; margin: -5px 0 0 -5px; cursor: default; }
.vm-q { border-radius: 50%; opacity: 0.85; }
.vm-t { width: 0; height: 0; background: none !important; border-left: 6px solid transparent;
        border-right: 6px solid transparent; border-bottom: 11px solid var(--c); margin: -7px 0 0 -6px; }
.vm-card { display: none; position: absolute; left: 12px; top: 12px; z-index: 10; background: #fff;
           border: 1px solid #94a3b8; padding: 4px; width: 150px; font-size: 11px; color: #0f172a;
           box-shadow: 0 2px 6px rgba(0,0,0,.2); white-space: normal; }
.vm-card img { max-width: 140px; max-height: 140px; display: block; }
.vm-pt:hover { z-index: 20; }
.vm-pt:hover .vm-card { display: block; }
.vm-star { position: absolute; font-size: 22px; line-height: 22px; margin: -11px 0 0 -8px; color: #dc2626;
           z-index: 15; text-shadow: 0 0 2px #fff; }
.vm-star:hover .vm-card { display: block; }
.vm-legend { font-size: 12px; color: #475569; margin-top: 4px; }
"""


@dataclass(frozen=True)
class Lineage:
    """One model's runs of a dataset and method, ordered by training samples (its data-scale stages)."""

    key: str
    label: str
    runs: pd.DataFrame  # rows of StoreReader.projected()
    model: str = ""
    base: str = ""  # model|experiment|variant: the same model on another meta-task's datasets
    paradigm: str = ""

    def stage_choices(self) -> list[tuple[str, str]]:
        return [(stage_label(r.stage, r.train_samples), r.run_id) for r in self.runs.itertuples()]

    def run_at(self, stage: str | None, train_samples=None) -> str | None:
        """The run at this stage (and sample count, when it has one), else at this stage, else None."""
        rows = self.runs[self.runs["stage"] == stage]
        exact = rows[rows["train_samples"] == train_samples] if train_samples is not None else rows.iloc[:0]
        rows = exact if len(exact) else rows
        return rows["run_id"].iloc[-1] if len(rows) else None


def stage_label(stage: str, train_samples) -> str:
    return f"{stage}" + ("" if pd.isna(train_samples) else f" ({int(train_samples)} samples)")


def lineages(projected: pd.DataFrame, dataset: str, method: str) -> list[Lineage]:
    """Each model (with its experiment, variant and train task) that has a map of this dataset and method."""
    rows = projected[(projected["dataset"] == dataset) & (projected["method"] == method)]
    if rows.empty:
        return []
    lineage = rows[["model", "experiment", "variant"]].fillna("").astype(str).agg("|".join, axis=1)
    # A zero-shot run has no train task: it is stage 0 of the lineage trained on this dataset's task.
    task = rows["train_task"].fillna(rows.groupby(lineage)["train_task"].transform("first")).fillna("")
    rows = rows.assign(train_task=task, key=lineage + "|" + task, base=lineage)
    if "paradigm" not in rows:
        rows = rows.assign(paradigm="")
    out = []
    for key, group in rows.groupby("key", sort=False):
        label = group["model"].iloc[0]
        if (rows.drop_duplicates("key")["model"] == label).sum() > 1:  # the same model trained twice
            label += f" [{group['experiment'].iloc[0]}, {group['train_task'].iloc[0]}]"
        out.append(Lineage(key, label, group.sort_values("train_samples", na_position="last"), model=group["model"].iloc[0],
                           base=group["base"].iloc[0], paradigm=str(group["paradigm"].fillna("").iloc[0])))
    return out


def carry_model(lines: list[Lineage], wanted: str | None) -> str | None:
    """A model pick on another dataset: the same lineage, else the same model trained on this dataset's
    meta-task (a dataset of another meta-task has other lineages), else the same model name; else None."""
    if not wanted:
        return None
    base, _, _ = wanted.rpartition("|")
    model = wanted.split("|", 1)[0]
    for match in (lambda x: x.key == wanted, lambda x: x.base == base, lambda x: x.model == model):
        found = next((x.key for x in lines if match(x)), None)
        if found:
            return found
    return None


def carry_stage(line: Lineage | None, wanted: str | None, projected: pd.DataFrame) -> str | None:
    """A stage pick (a run id) on another lineage: the run at the same stage and sample count, else at the
    same stage, else the lineage's last stage."""
    if line is None:
        return None
    ids = list(line.runs["run_id"])
    if wanted in ids:
        return wanted
    old = projected[projected["run_id"] == wanted] if wanted else projected.iloc[:0]
    if len(old):
        found = line.run_at(old["stage"].iloc[0], old["train_samples"].iloc[0])
        if found:
            return found
    return ids[-1] if ids else None


def default_pair(lines: list[Lineage], a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """Models A and B: the given ones where they exist, else A an autoregressive model and B a model of the
    other paradigm (diffusion when A is AR), never A again; with one model only, B is None until another lands
    (so a page open during a demo build does not end with A = B)."""
    keys = [x.key for x in lines]
    paradigm = {x.key: x.paradigm for x in lines}
    if a not in keys:
        a = next((x.key for x in lines if x.paradigm == AR), keys[0] if keys else None)
    if b not in keys:
        other = [x.key for x in lines if x.key != a]
        b = next((k for k in other if paradigm[k] and paradigm[k] != paradigm.get(a)), other[0] if other else None)
    return a, b


def grid_lineages(lines: list[Lineage], per_paradigm: int = 2) -> list[Lineage]:
    """The grid's families: the first two autoregressive and the first two diffusion models (distinct model
    names first), AR before diffusion; fewer when the store has fewer."""
    out = []
    for paradigm in (AR, DIFFUSION):
        mine = [x for x in lines if x.paradigm == paradigm]
        distinct = list({x.model: x for x in reversed(mine)}.values())[::-1]
        rest = [x for x in mine if x not in distinct]
        out += (distinct + rest)[:per_paradigm]
    return out


def grid_stage_choices(lines: list[Lineage]) -> list[str]:
    """Stage labels of the grid's models, in training order (zero-shot, checkpoints, final)."""
    runs = pd.concat([x.runs for x in lines], ignore_index=True) if lines else pd.DataFrame()
    if runs.empty:
        return []
    runs = runs.sort_values("train_samples", na_position="last", kind="stable")
    return list(dict.fromkeys(stage_label(r.stage, r.train_samples) for r in runs.itertuples()))


def grid_runs(lines: list[Lineage], label: str) -> list[tuple[Lineage, str | None]]:
    """Each grid model's run at one stage label: the exact stage and samples, else the same stage name."""
    stage, _, rest = label.partition(" (")
    samples = int(rest.split()[0]) if rest else None
    return [(x, x.run_at(stage, samples)) for x in lines]


def sample_pairs(pairs: pd.DataFrame, points: list[pd.DataFrame], n: int, seed: int = 0) -> pd.DataFrame:
    """At most n of a dataset's pairs drawn on every given map, the same ones for every map."""
    ok = pairs
    for p in points:
        queries = set(p.loc[p["role"] == "query", "item_id"])
        targets = set(p.loc[p["role"] == "target", "item_id"])
        ok = ok[ok["query_item"].isin(queries) & ok["gold_item"].isin(targets)]
    ok = ok.drop_duplicates("query_item").sort_values("row_idx")
    if len(ok) > n:
        ok = ok.iloc[np.sort(np.random.default_rng(seed).choice(len(ok), n, replace=False))]
    return ok


def _scale(xy: np.ndarray, size: int = SIZE) -> np.ndarray:
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    out = PAD + (xy - low) / span * (size - 2 * PAD)
    out[:, 1] = size - out[:, 1]  # screen y grows downwards
    return out


def png_data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(bytes(png)).decode()}"


def _card(row) -> str:
    parts = [f"<b>{html.escape(row.role)}</b> · {html.escape(str(row.modality))}"]
    thumbnail = getattr(row, "thumbnail", None)
    if isinstance(thumbnail, (bytes, bytearray)) and thumbnail:
        parts.append(f'<img alt="" src="{png_data_uri(thumbnail)}">')
    if isinstance(row.text, str) and row.text:
        parts.append(html.escape(row.text[:200]))
    return f'<span class="vm-card">{"<br>".join(parts)}</span>'


def map_html(title: str, points: pd.DataFrame, pairs: pd.DataFrame, colour: str,
             star: tuple[float, float, str] | None = None, size: int = SIZE) -> str:
    """One map: the sampled pairs' queries (circles), targets (triangles) and a dashed line per pair;
    `star` (x, y, label) marks a live query placed on the map."""
    queries = set(pairs["query_item"])
    targets = set(pairs["gold_item"])
    shown = points[((points["role"] == "query") & points["item_id"].isin(queries))
                   | ((points["role"] == "target") & points["item_id"].isin(targets))].reset_index(drop=True)
    if shown.empty:
        return f'<div class="vm-title">{html.escape(title)}</div><p>No points to draw.</p>'
    xy = shown[["x", "y"]].to_numpy(dtype=float)
    if star is not None:
        xy = np.vstack([xy, [star[0], star[1]]])
    xy = _scale(xy, size)
    where = {(r, i): k for k, (r, i) in enumerate(zip(shown["role"], shown["item_id"], strict=True))}
    lines = []
    for q, t in zip(pairs["query_item"], pairs["gold_item"], strict=True):
        a, b = xy[where[("query", q)]], xy[where[("target", t)]]
        lines.append(f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}"/>')
    svg = (f'<svg width="{size}" height="{size}"><g stroke="#94a3b8" stroke-width="0.8" stroke-dasharray="3,3">'
           f'{"".join(lines)}</g></svg>')
    marks = []
    for k, row in enumerate(shown.itertuples()):
        kind = "vm-q" if row.role == "query" else "vm-t"
        marks.append(f'<div class="vm-pt {kind}" data-role="{row.role}" style="left:{xy[k, 0]:.1f}px;'
                     f'top:{xy[k, 1]:.1f}px;background:{colour};--c:{colour}">{_card(row)}</div>')
    if star is not None:
        marks.append(f'<div class="vm-star" style="left:{xy[-1, 0]:.1f}px;top:{xy[-1, 1]:.1f}px">★'
                     f'<span class="vm-card">{html.escape(star[2])}</span></div>')
    n_q, n_t = len(pairs), int((shown["role"] == "target").sum())
    return (f'<div><div class="vm-title" style="max-width:{size}px">{html.escape(title)}</div>'
            f'<div class="vm-map" style="width:{size}px;height:{size}px">{svg}{"".join(marks)}</div>'
            f'<div class="vm-legend">● {n_q} queries &nbsp; ▲ {n_t} targets &nbsp; - - pair</div></div>')


def maps_html(panels: list[tuple[str, pd.DataFrame | None]], pairs: pd.DataFrame, size: int = SIZE) -> str:
    """Maps side by side; a panel without points (a grid model lacking the chosen stage) says so."""
    body = "".join(map_html(title, pts, pairs, COLOURS[i % len(COLOURS)], size=size) if pts is not None
                   else f'<div><div class="vm-title" style="max-width:{size}px">{html.escape(title)}</div>'
                        f'<p style="width:{size}px">No map at this stage.</p></div>'
                   for i, (title, pts) in enumerate(panels))
    grid = " vm-grid" if len(panels) > 2 else ""  # four maps: two by two, like the paper's Figure 4
    return f'<style>{CSS}</style><div class="vm-maps{grid}" id="alignment-maps">{body}</div>'


def message_html(text: str) -> str:
    return f'<div id="alignment-maps"><p>{html.escape(text)}</p></div>'


def empty_metrics_table() -> pd.DataFrame:
    return pd.DataFrame(columns=["model", "stage", "train samples"])


def metrics_table(alignment: pd.DataFrame, dataset: str, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run (with its model and stage), one column per metric, for one dataset."""
    rows = alignment[(alignment["dataset"] == dataset) & alignment["run_id"].isin(runs["run_id"])]
    if rows.empty:
        return empty_metrics_table()
    wide = rows.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    wide = wide[[m for m in METRICS if m in wide.columns]].rename(columns=METRICS).round(4)
    info = runs.drop_duplicates("run_id").set_index("run_id")[["label_model", "stage", "train_samples"]]
    out = info.join(wide, how="inner").rename(columns={"label_model": "model", "train_samples": "train samples"})
    return out.reset_index(drop=True)


def metric_lines(alignment: pd.DataFrame, dataset: str, runs: pd.DataFrame) -> go.Figure:
    """Each metric across training stages (x: training samples), one line per model."""
    rows = alignment[(alignment["dataset"] == dataset) & alignment["run_id"].isin(runs["run_id"])]
    rows = rows.merge(runs.drop_duplicates("run_id")[["run_id", "label_model"]], on="run_id")
    present = set(rows["metric"])
    recalls = ["i2t_recall@1", "t2i_recall@1"] if "i2t_recall@1" in present else ["q2t_recall@1", "t2q_recall@1"]
    names = [m for m in [*LINE_METRICS, *recalls] if m in present]
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=[METRICS[m] for m in names])
    # The maps' colours: a model's line has its map's colour (the runs come in the maps' order).
    colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(dict.fromkeys(runs["label_model"]))}
    for i, name in enumerate(names, start=1):
        for model, group in rows[rows["metric"] == name].groupby("label_model", sort=False):
            group = group.sort_values("train_samples")
            fig.add_trace(go.Scatter(x=group["train_samples"].tolist(), y=group["value"].tolist(), mode="lines+markers", name=model,
                                     legendgroup=model, showlegend=i == 1, line=dict(color=colour.get(model))),
                          row=1, col=i)
    fig.update_layout(template="plotly_white", height=300, margin=dict(l=40, r=20, t=50, b=40),
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text="training samples")
    return fig


@dataclass(frozen=True)
class AlignmentData:
    """What the tab reads once per store version."""

    projected: pd.DataFrame
    alignment: pd.DataFrame

    @classmethod
    def load(cls, reader: StoreReader) -> AlignmentData:
        return cls(reader.projected(), reader.alignment())

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.projected["dataset"])) if len(self.projected) else []

    def methods(self, dataset: str | None = None) -> list[str]:
        p = self.projected if not dataset else self.projected[self.projected["dataset"] == dataset]
        return [m for m in ("umap", "tsne", "pca") if m in set(p["method"])]
