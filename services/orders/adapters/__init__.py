"""SQL adapters of the orders service (the domain in ``services/orders/domain`` does no I/O)."""
