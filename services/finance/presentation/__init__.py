"""The finance workspace's own presentation: the pages' template filters and the PDF documents (:mod:`.pdf`).

The formatting underneath (rupiah with Dr/Cr or D/K, instants in the lapas' zone, the message catalogue, CSV and
XLSX exports) is shared with the ledger's CLI reports and lives in :mod:`services.presentation`.

Pages use :data:`FILTERS` (``templates.env.filters.update(FILTERS)``): ``rupiah``, ``rupiah_side``, ``in_zone`` and
``t``, each taking the language (and zone) as arguments, so the page passes the request's ``lang``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.presentation.messages import message
from services.presentation.money import rupiah, rupiah_side
from services.presentation.zones import format_datetime

FILTERS: dict[str, Callable[..., Any]] = {
    "rupiah": rupiah,
    "rupiah_side": rupiah_side,
    "in_zone": format_datetime,
    "t": message,
}
