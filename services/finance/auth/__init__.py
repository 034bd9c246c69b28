"""Accounts, sessions and the audit log of the finance workspace — what every router and page builds on.

Import from here (the names are stable; the modules behind them may move):

- :class:`User` (``services.finance.auth.users``): ``id``, ``name``, ``role`` and ``lapas``; ``user.lapas_scope``
  is the one lapas an ``auditor_lapas`` or ``bendahara`` may see, None for ``auditor_pusat`` and ``admin``
  (every lapas). :data:`ROLES`: ``auditor_pusat`` (reads every lapas), ``auditor_lapas`` (reads one),
  ``bendahara`` (treasurer of one lapas: proposes and approves), ``admin`` (manages users).
- :func:`current_user` (``services.finance.auth.deps``): the FastAPI dependency of every page and API route,
  ``user: CurrentUser`` (``CurrentUser = Annotated[User, Depends(current_user)]``). It reads the session cookie,
  refuses a session idle for longer than ``KARYA_FINANCE_SESSION_IDLE_MINUTES`` and refreshes the others; without
  a live session an ``/api/`` request gets 401 and a page a 303 to ``/login?next=…``.
- :func:`require_role` (same module): ``Depends(require_role("bendahara"))`` → the user, or 403.
- :func:`csrf_protect` (``services.finance.auth.csrf``): a dependency every state-changing form route takes
  (``dependencies=[Depends(csrf_protect)]``): 403 unless the form field ``csrf_token`` (or the ``X-CSRF-Token``
  header) carries the token of this browser's session; templates get it as ``csrf_token`` from
  :func:`services.finance.templating.render`. :func:`form_fields` parses the form body (no python-multipart).
- :func:`record` (``services.finance.auth.audit``, also as ``audit.record``): ``await audit.record(conn, user,
  action, subject)`` appends a row to ``finance.audit_log`` in the caller's transaction — exports
  (``action="export"``, ``subject="trial_balance.csv"``) and approvals (``"approve"``, the proposal id) call it;
  logins, failed logins and logouts are recorded by the login routes. The table refuses UPDATE and DELETE.

Where the app keeps what routers need (set by :func:`services.finance.app.create_app`): ``request.app.state.db``
(the finance schema's :class:`infra.db.unit_of_work.Database`; ``.engine`` for other schemas) and
``request.app.state.settings`` (:class:`services.finance.settings.FinanceSettings`) and
``request.app.state.schemas`` (each service's schema by name, ``{"ledger": …, "gateway": …}``, from the topology).
"""

from services.finance.auth import audit
from services.finance.auth.audit import record
from services.finance.auth.csrf import csrf_protect, form_fields
from services.finance.auth.deps import CurrentUser, current_user, require_role
from services.finance.auth.users import ROLES, Role, User

__all__ = [
    "ROLES",
    "CurrentUser",
    "Role",
    "User",
    "audit",
    "csrf_protect",
    "current_user",
    "form_fields",
    "record",
    "require_role",
]
