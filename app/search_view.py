"""The Live retrieval tab's pure parts: a `SearchResult` in, HTML (top-k columns, maps) out."""

from __future__ import annotations

import html

from app import alignment_view
from pipeline.analysis.projection import METHOD_LABELS
from pipeline.search import SearchEngine, SearchResult

CSS = """
.sv-cols { display: flex; gap: 12px; overflow-x: auto; align-items: flex-start; }
.sv-col { min-width: 210px; max-width: 260px; border: 1px solid #e2e8f0; padding: 6px; border-radius: 6px; }
.sv-col h4 { margin: 0 0 4px 0; font-size: 13px; }
.sv-meta { font-size: 11px; color: #64748b; margin-bottom: 4px; }
.sv-hit { display: flex; gap: 6px; align-items: center; padding: 3px; border-bottom: 1px solid #f1f5f9; font-size: 12px; }
.sv-item { display: flex; flex-direction: column; flex: 1; min-width: 0; }
.sv-item img { width: 64px; height: 64px; object-fit: contain; }
.sv-label { font-size: 11px; color: #0f172a; overflow-wrap: anywhere; }
.sv-gold { background: #fef9c3; outline: 2px solid #ca8a04; }
.sv-score { font-family: monospace; color: #334155; }
.sv-err { color: #b91c1c; font-size: 12px; }
"""


def caption_of(hit) -> str:
    """What names a hit under its thumbnail: its text (a label, a caption), else its image's file name."""
    if hit.text:
        return hit.text
    if hit.image_path:
        return hit.image_path.rsplit("/", 1)[-1]
    return f"[{hit.modality}]"


def _hit_html(hit) -> str:
    thumb = f'<img alt="" src="{alignment_view.png_data_uri(hit.thumbnail)}">' if hit.thumbnail else ""
    caption = caption_of(hit)
    gold = " sv-gold" if hit.gold else ""
    mark = " <b>gold</b>" if hit.gold else ""
    return (f'<div class="sv-hit{gold}" data-item="{html.escape(hit.item_id)}"><span>{hit.rank}.</span>'
            f'<div class="sv-item">{thumb}<span class="sv-label" title="{html.escape(caption)}">'
            f'{html.escape(caption[:160])}</span></div><span class="sv-score">{hit.score:.3f}</span>{mark}</div>')


def results_html(result: SearchResult) -> str:
    """One column per model: its top-k with thumbnails or text and scores; the gold item highlighted."""
    cols = []
    for a in result.answers:
        meta = f"{a.seconds * 1000:.0f} ms"
        if a.gold_rank is not None:
            meta += f" · gold at rank {a.gold_rank}"
        body = (f'<div class="sv-err">{html.escape(a.error)}</div>' if a.error
                else "".join(_hit_html(h) for h in a.hits))
        cols.append(f'<div class="sv-col" data-run="{html.escape(a.run.run_id)}"><h4>{html.escape(a.run.title)}</h4>'
                    f'<div class="sv-meta">{meta}</div>{body}</div>')
    return f'<style>{CSS}</style><div class="sv-cols" id="search-results">{"".join(cols)}</div>'


def status_line(result: SearchResult) -> str:
    ok = sum(a.ok for a in result.answers)
    line = f"**{result.query}** against {result.pool if result.pool != 'all' else 'all stored candidates'}: " \
           f"{ok} of {len(result.answers)} models answered."
    if result.gold:
        g = result.gold[0]
        line += f" This is stored query {g['row_idx']} of {g['dataset']}; its gold item is highlighted."
    return line


def maps_html(engine: SearchEngine, result: SearchResult, max_pairs: int = 120) -> str:
    """Each model's stored map of the placement dataset, with the query as a star."""
    panels = []
    for a in result.answers:
        if a.placement is None:
            continue
        found = engine.map_of(a.run.run_id, a.placement.dataset, a.placement.method)
        if found is None:
            continue
        points = found[0]
        pairs = engine.reader.pairs(a.placement.dataset)
        sample = alignment_view.sample_pairs(pairs, [points], max_pairs)
        title = f"{a.run.title} · {a.placement.dataset} ({METHOD_LABELS.get(a.placement.method, a.placement.method)})"
        panels.append(alignment_view.map_html(title, points, sample, alignment_view.COLOURS[len(panels) % 2],
                                  star=(a.placement.x, a.placement.y, f"your query: {result.query}")))
    if not panels:
        return ('<div id="search-maps"><p>No stored map to place the query on (run `vlmembed project`, or pick '
                "a candidate pool).</p></div>")
    return f'<style>{alignment_view.CSS}</style><div class="vm-maps" id="search-maps">{"".join(panels)}</div>'
