"""How the finance workspace shows numbers, times and words: integer rupiah as ``Rp 1.234.567`` with Dr/Cr (D/K in
Bahasa Indonesia), instants in the lapas' own zone (WIB, WITA, WIT), a tiny message catalogue (``id`` default,
``en``), and exports of any table to CSV, XLSX and PDF. Pure functions: no database, no web framework.

Pages use :data:`FILTERS` (``templates.env.filters.update(FILTERS)``): ``rupiah``, ``rupiah_side``, ``in_zone`` and
``t``, each taking the language (and zone) as arguments, so the page passes the request's ``lang``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.finance.presentation.messages import message
from services.finance.presentation.money import rupiah, rupiah_side
from services.finance.presentation.zones import format_datetime

FILTERS: dict[str, Callable[..., Any]] = {
    "rupiah": rupiah,
    "rupiah_side": rupiah_side,
    "in_zone": format_datetime,
    "t": message,
}
