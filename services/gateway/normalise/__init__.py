"""Pure parsers: a raw webhook body → what it says about an order, in canonical terms.

Money, quantities and timestamps are read by :mod:`services.gateway.values` (the gateway's one parser of them).
"""

from services.gateway.normalise.notices import Notice, ParseError, parse_delivery

__all__ = ["Notice", "ParseError", "parse_delivery"]
