"""Pure domain of the ledger service: no I/O, no SQL, no Kafka.

Modules:

* :mod:`~services.ledger.domain.allocation`: :func:`allocate`, the one place money is divided;
* :mod:`~services.ledger.domain.accounts`: chart of accounts, account codes, normal sides;
* :mod:`~services.ledger.domain.policy`: split policies (parse, select, hash);
* :mod:`~services.ledger.domain.model`: posting requests;
* :mod:`~services.ledger.domain.distribution`: distribution plans and cumulative refund reversal;
* :mod:`~services.ledger.domain.journal`: journal entries, validation, request hashes, posting conflicts;
* :mod:`~services.ledger.domain.facts`: what the ledger has posted per order;
* :mod:`~services.ledger.domain.postings`: posting builders (the accounting is documented there);
* :mod:`~services.ledger.domain.hashchain`: tamper-evident hash chain;
* :mod:`~services.ledger.domain.canonical`: canonical JSON behind every hash;
* :mod:`~services.ledger.domain.errors`: the error types (all ``LedgerDomainError``, a ``ValueError``).
"""
