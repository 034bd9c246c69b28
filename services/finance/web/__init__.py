"""The workspace's server-rendered pages (Jinja2 templates under ``templates/pages/``): the per-lapas dashboard, the
trial balance with its CSV/XLSX download, the journal browser and entry detail, an order's entries, an account
register and an inmate's savings statement (:mod:`.pages`), the monthly lapas report and the PDF documents
(:mod:`.reports`), the PPh 22 withholding slips (:mod:`.withholding`). Every page reads through
:mod:`services.finance.queries` on the viewer's scoped connection (:data:`services.finance.scope.Reads`), so the
database's lapas policies decide what a page shows; an entry, order or inmate of another lapas is a 404 like one
that does not exist.
"""

from services.finance.web.pages import router
from services.finance.web.payouts import router as payouts_router
from services.finance.web.reports import router as reports_router
from services.finance.web.withholding import router as withholding_router

router.include_router(reports_router)
router.include_router(payouts_router)
router.include_router(withholding_router)

__all__ = ["router"]
