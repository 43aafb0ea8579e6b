"""The Per query view: where two runs disagree on one dataset, query by query.

Pure functions over frames, plus `top_candidates`, which ranks a run's stored embeddings
(the store keeps each query's gold rank and top-1, not its whole ranking). Everything that
reads the store goes through `storage.queries` and `StoreReader.embeddings` / `items`.
"""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from pipeline.stats.paired import mcnemar_exact
from storage import StoreReader
from storage.queries import candidates

SHOW = {"a_only": "A right, B wrong", "b_only": "B right, A wrong", "both_right": "both right",
        "both_wrong": "both wrong", "all": "every query"}
TOP_K = 3
MAX_SHOWN = 50  # queries drawn at once; the counts cover all of them


def outcome(outcomes: pd.DataFrame) -> pd.Series:
    """Each query's cell of the 2x2 table (a SHOW key)."""
    a, b = outcomes["rank_a"] == 1, outcomes["rank_b"] == 1
    return pd.Series(np.select([a & ~b, ~a & b, a & b], ["a_only", "b_only", "both_right"], "both_wrong"),
                     index=outcomes.index)


def contingency(outcomes: pd.DataFrame, label_a: str, label_b: str) -> str:
    """The 2x2 table of Precision@1 outcomes as Markdown, with McNemar's exact p on its discordant cells."""
    cells = outcome(outcomes).value_counts().reindex(list(SHOW)[:4], fill_value=0)
    p = float(mcnemar_exact(cells["a_only"], cells["b_only"]))
    return (f"| | **B** ({html.escape(label_b)}) right | B wrong |\n|---|---|---|\n"
            f"| **A** ({html.escape(label_a)}) right | {cells['both_right']} | {cells['a_only']} |\n"
            f"| A wrong | {cells['b_only']} | {cells['both_wrong']} |\n\n"
            f"{len(outcomes)} queries both runs ranked; McNemar's exact p = {p:.3g} "
            f"(on the {cells['a_only'] + cells['b_only']} queries where exactly one is right).")


def select(outcomes: pd.DataFrame, items: pd.DataFrame, show: str, text: str = "") -> pd.DataFrame:
    """The queries of one cell (`show`), optionally only those whose query or gold text contains `text`."""
    chosen = outcomes if show == "all" else outcomes[outcome(outcomes) == show]
    if text:
        texts = items.set_index("item_id")["text"].fillna("")
        needle = text.lower()
        hit = chosen["query_item"].map(texts).fillna("").str.lower().str.contains(needle, regex=False)
        hit |= chosen["gold_item"].map(texts).fillna("").str.lower().str.contains(needle, regex=False)
        chosen = chosen[hit]
    return chosen


def top_candidates(reader: StoreReader, run_id: str, dataset: str, rows: pd.DataFrame,
                   k: int = TOP_K) -> dict[int, list[tuple[str, float]]] | None:
    """Each shown row's top-k candidates with cosine scores from the run's stored embeddings; None when
    the run did not store an embedding for every query and candidate of those rows."""
    if rows.empty:
        return {}
    lists = candidates(reader, dataset, rows["row_idx"].tolist()).set_index("row_idx")["candidates"]
    wanted = set(rows["query_item"]) | {c for cands in lists for c in cands}
    ids, vecs = reader.embeddings(run_id, sorted(wanted))
    if len(ids) < len(wanted):
        return None
    at = {item: i for i, item in enumerate(ids)}
    out = {}
    for row in rows.itertuples(index=False):
        cands = list(lists[row.row_idx])
        scores = vecs[[at[c] for c in cands]] @ vecs[at[row.query_item]]  # (C,) cosines: vectors are unit
        best = np.argsort(-scores, kind="stable")[:k]
        out[int(row.row_idx)] = [(cands[i], float(scores[i])) for i in best]
    return out


def _item_html(item: pd.Series | None, width: int = 72) -> str:
    if item is None:
        return "<i>(not stored)</i>"
    parts = []
    thumb = item.get("thumbnail")
    if isinstance(thumb, bytes | bytearray) and thumb:
        data = base64.b64encode(bytes(thumb)).decode()
        parts.append(f'<img src="data:image/png;base64,{data}" width="{width}" alt="">')
    text = item.get("text")
    if isinstance(text, str) and text:
        parts.append(f"<span>{html.escape(text[:160])}</span>")
    return "<br>".join(parts) or f"<i>{html.escape(str(item.get('item_id')))}</i>"


def _ranking_html(top: list[tuple[str, float]] | None, row, side: str, items: dict, gold: str) -> str:
    if top is None:  # no embeddings: what the ranks table keeps
        item, score = getattr(row, f"top_{side}"), getattr(row, f"top_score_{side}")
        head = f"gold rank {getattr(row, f'rank_{side}')}; top 1 only (no stored embeddings)"
        top = [(item, score)] if isinstance(item, str) else []
    else:
        head = f"gold rank {getattr(row, f'rank_{side}')}"
    entries = "".join(f"<li{' class=gold' if c == gold else ''}>{_item_html(items.get(c), 48)} "
                      f"<code>{s:.3f}</code>{' ✓' if c == gold else ''}</li>" for c, s in top)
    return f"<div>{head}</div><ol>{entries}</ol>"


def queries_html(rows: pd.DataFrame, items: pd.DataFrame, tops_a: dict | None, tops_b: dict | None,
                 label_a: str, label_b: str) -> str:
    """The chosen queries as an HTML table: query, gold, and each run's top candidates with scores."""
    if rows.empty:
        return "<p>No query in this cell.</p>"
    by_id = {r["item_id"]: r for _, r in items.iterrows()}
    body = []
    for row in rows.head(MAX_SHOWN).itertuples(index=False):
        a = _ranking_html(None if tops_a is None else tops_a.get(row.row_idx), row, "a", by_id, row.gold_item)
        b = _ranking_html(None if tops_b is None else tops_b.get(row.row_idx), row, "b", by_id, row.gold_item)
        body.append(f"<tr data-row='{row.row_idx}'><td>#{row.row_idx}</td><td>{_item_html(by_id.get(row.query_item))}"
                    f"</td><td>{_item_html(by_id.get(row.gold_item))}</td><td>{a}</td><td>{b}</td></tr>")
    more = f"<p>{len(rows) - MAX_SHOWN} more not shown: narrow the filter.</p>" if len(rows) > MAX_SHOWN else ""
    return (f"<table class='per-query'><thead><tr><th>row</th><th>query</th><th>gold</th>"
            f"<th>A: {html.escape(label_a)}</th><th>B: {html.escape(label_b)}</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{more}")
