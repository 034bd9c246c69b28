"""Pure domain code of the orders service: lifecycle, channel mappings, stock movements and allocation.

No I/O here; the adapters (SQL, Kafka) call these functions and persist what they return.
"""
