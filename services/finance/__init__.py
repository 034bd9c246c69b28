"""The finance workspace (issue 16): a web app and read API for auditors and treasurers, its own process.

``karya serve finance`` builds it in the composition root (:mod:`karya.services`): the settings
(:mod:`services.finance.settings`, refusing to start without its secret), one engine, and the app factory
:func:`services.finance.app.create_app`. Accounts, sessions, CSRF and the audit log live in
:mod:`services.finance.auth` (its docstring is the contract the read API and the pages build on); the read API's
routers in ``services/finance/api/``; formatting and exports beside them.
"""
