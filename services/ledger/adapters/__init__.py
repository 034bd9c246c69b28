"""SQL adapters of the ledger service (the domain in ``services/ledger/domain`` does no I/O)."""
