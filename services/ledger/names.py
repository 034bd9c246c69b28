"""The ledger's names that its entry points share, in a module that imports nothing: ``karya ledger`` commands
take them from here without loading the service process (:mod:`services.ledger.app`: the runtime, FastStream, the
consumer), which names them to its composition root from here too."""

from __future__ import annotations

SCHEMA = "ledger"
"""The ledger's PostgreSQL schema: named here once, and handed to everything that writes SQL."""
CONSUMER = "ledger"
"""The consumer's name: its inbox and dead letters are filed under it (the CLI's dead letters too)."""
