"""Pure parsers: a raw webhook body (or an API answer) → what it says about an order, in canonical terms."""

from services.gateway.normalise.amounts import NonIntegralAmount, to_quantity, to_rupiah, unix_time
from services.gateway.normalise.notices import Notice, ParseError, parse_delivery

__all__ = [
    "NonIntegralAmount",
    "Notice",
    "ParseError",
    "parse_delivery",
    "to_quantity",
    "to_rupiah",
    "unix_time",
]
