"""The dashboard's tabs, in display order. A new tab is a module with a `TAB`, added here."""

from __future__ import annotations

from app.tabs import alignment, data_scale, datasets, overview, per_query, search, sql
from app.tabs.base import Context, Tab

TABS: list[Tab] = [overview.TAB, datasets.TAB, per_query.TAB, data_scale.TAB, alignment.TAB, search.TAB, sql.TAB]

__all__ = ["TABS", "Context", "Tab"]
