"""The one place where the ledger divides money.

:func:`allocate` splits an integer rupiah amount in proportion to exact weights with the *largest
remainder* (Hamilton) method:

1. every part gets the floor of its exact share ``total * w_i / sum(w)``;
2. the rupiah left over (fewer than the number of weights) go one each to the parts with the largest
   fractional remainders;
3. equal remainders are broken by position: the earlier weight (the earlier rule of a policy, the earlier
   member of a work group) wins the extra rupiah.

Guarantees, for any non-negative weights that are not all zero:

* the parts sum exactly to ``total``;
* every part is within one rupiah of its exact share (``floor(exact) <= part <= ceil(exact)``);
* a zero weight gets exactly 0;
* the result depends only on the inputs (no randomness, no floats: weights are ``int`` or ``Fraction``).

Negative totals (used for reversals) are allocated as the mirror image of the positive total:
``allocate(-t, w) == [-p for p in allocate(t, w)]``, so a reversal of an amount takes exactly what the
posting of that amount gave.

Known property of the method (documented, not a bug): it is not monotone in ``total`` (the "Alabama
paradox"): a part can shrink by one rupiah when the total grows by one. Cumulative reversals
(:mod:`services.ledger.domain.distribution`) stay correct because each reversal posts the signed difference
between two cumulative allocations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import cast

from services.ledger.domain.errors import AllocationError

__all__ = ["allocate", "scale_weights", "split_exact"]


def _ratio(index: int, weight: object) -> tuple[int, int]:
    if isinstance(weight, bool) or not isinstance(weight, int | Fraction):
        raise AllocationError(f"weight {index} is {type(weight).__name__} {weight!r}; weights must be int or Fraction")
    if weight < 0:
        raise AllocationError(f"weight {index} is negative ({weight}); weights must be >= 0")
    if isinstance(weight, int):
        return int(weight), 1
    return weight.numerator, weight.denominator


def allocate(total: int, weights: Sequence[Fraction | int]) -> list[int]:
    """Split ``total`` rupiah in proportion to ``weights`` (largest remainder, ties to the earlier weight).

    Args:
        total: whole rupiah to divide; negative totals mirror the positive case.
        weights: one non-negative ``int`` or ``Fraction`` per part, in rule order; not all zero.

    Returns:
        One ``int`` per weight, in the same order, summing exactly to ``total``.

    Raises:
        AllocationError: no weights, a negative or non-exact (float, bool) weight, all weights zero, or a
            non-integer total.
    """
    if isinstance(total, bool) or not isinstance(total, int):
        raise AllocationError(f"total must be an int number of rupiah, got {type(total).__name__} {total!r}")
    scaled = scale_weights(weights)
    scaled_sum = sum(scaled)
    if scaled_sum == 0:
        raise AllocationError(f"cannot allocate {total}: all {len(scaled)} weights are zero")
    if total < 0:
        return [-part for part in allocate(-total, scaled)]

    parts: list[int] = []
    remainders: list[int] = []
    for weight in scaled:
        floor, remainder = divmod(total * weight, scaled_sum)
        parts.append(floor)
        remainders.append(remainder)
    leftover = total - sum(parts)
    if leftover:
        # leftover * scaled_sum == sum(remainders) and each remainder < scaled_sum, so only parts with a
        # non-zero remainder (never a zero weight) can receive one of the leftover rupiah. The sort is stable,
        # so equal remainders keep weight order (ties to the earlier weight).
        ranking = sorted(range(len(parts)), key=remainders.__getitem__, reverse=True)
        for i in ranking[:leftover]:
            parts[i] += 1
    return parts


def scale_weights(weights: Iterable[Fraction | int]) -> list[int]:
    """``weights`` as integers over their common denominator (the same ratios), validated as :func:`allocate`
    requires: each an ``int`` (not ``bool``) or ``Fraction``, none negative, at least one. Allocating over the
    result gives exactly the allocation over ``weights``. A list of ``int`` is returned as it is (not copied).
    """
    given = weights if type(weights) is list else list(weights)
    for weight in given:
        if type(weight) is not int or weight < 0:
            break
    else:
        if given:
            return cast(list[int], given)  # whole non-negative ints: their own scaling (no copy)
    ratios = [_ratio(i, w) for i, w in enumerate(given)]
    if not ratios:
        raise AllocationError("cannot allocate over an empty list of weights")
    # Scale to integers over a common denominator: exact share i is total * scaled[i] / scaled_sum, and
    # remainders over the same denominator compare as plain ints.
    denominator = math.lcm(*(d for _, d in ratios))
    return [n * (denominator // d) for n, d in ratios]


#: Alias under the name used in the design notes.
split_exact = allocate
