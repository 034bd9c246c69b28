"""How Karya shows numbers, times and words to people, shared by every user-facing output: the finance workspace's
pages and exports and the ledger's CLI reports. Integer rupiah as ``Rp 1.234.567`` with Dr/Cr (D/K in Bahasa
Indonesia) (:mod:`.money`), instants in the lapas' own zone, WIB, WITA or WIT (:mod:`.zones`), the message catalogue
(``id`` default, ``en``: :mod:`.messages`) and any table as CSV or XLSX (:mod:`.exports`).

Pure functions, no database, no web framework, and no service's internals: like :mod:`services.contracts`, a
service may import it, it imports no service (what only the workspace needs, its page filters and PDF documents,
stays in :mod:`services.finance.presentation`).
"""
