"""SQL of the finance workspace's read models: set-based reads of the ledger, in the viewer's lapas scope.

Every function takes a :class:`services.finance.scope.ReadModel` (a transaction already in the viewer's scope) and
returns plain data with integer rupiah. None of them filters by lapas: the database's row-level security does
(migration ``finance_0002``).
"""
