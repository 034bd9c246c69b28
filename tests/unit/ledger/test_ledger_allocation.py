"""The one allocation function: exact sums, within one rupiah, deterministic, ties by rule order."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain.allocation import allocate, split_exact
from services.ledger.domain.errors import AllocationError

weights_st = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=10_000),
        st.fractions(min_value=0, max_value=100, max_denominator=1_000),
    ),
    min_size=1,
    max_size=9,
).filter(lambda ws: sum(ws) > 0)
totals_st = st.integers(min_value=-(10**13), max_value=10**13)


def exact(total: int, weights: list[int | Fraction], i: int) -> Fraction:
    return Fraction(total) * Fraction(weights[i]) / sum(Fraction(w) for w in weights)


def remainders(total: int, weights: list[int | Fraction]) -> list[Fraction]:
    shares = [exact(total, weights, i) for i in range(len(weights))]
    return [s - math.floor(s) for s in shares]


@given(totals_st, weights_st)
def test_parts_sum_exactly_to_the_total(total: int, weights: list[int | Fraction]) -> None:
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert all(type(p) is int for p in parts)
    assert sum(parts) == total


@given(totals_st, weights_st)
def test_each_part_is_within_one_rupiah_of_its_exact_share(total: int, weights: list[int | Fraction]) -> None:
    for i, part in enumerate(allocate(total, weights)):
        share = exact(total, weights, i)
        assert math.floor(share) <= part <= math.ceil(share)
        assert abs(part - share) < 1


@given(totals_st, weights_st)
def test_same_inputs_same_outputs(total: int, weights: list[int | Fraction]) -> None:
    assert allocate(total, weights) == allocate(total, list(weights)) == split_exact(total, tuple(weights))
    # Equal values in another representation (int vs Fraction) give the same result.
    assert allocate(total, weights) == allocate(total, [Fraction(w) for w in weights])


@given(totals_st, weights_st)
def test_zero_weights_get_nothing(total: int, weights: list[int | Fraction]) -> None:
    for w, part in zip(weights, allocate(total, weights), strict=True):
        if w == 0:
            assert part == 0


@given(st.integers(min_value=0, max_value=10**13), weights_st)
def test_negative_totals_mirror_positive_ones(total: int, weights: list[int | Fraction]) -> None:
    assert allocate(-total, weights) == [-p for p in allocate(total, weights)]


@given(st.integers(min_value=0, max_value=10**9), weights_st)
def test_ties_go_to_the_earlier_rule(total: int, weights: list[int | Fraction]) -> None:
    parts = allocate(total, weights)
    rems = remainders(total, weights)
    extras = [p - math.floor(exact(total, weights, i)) for i, p in enumerate(parts)]
    for i in range(len(weights)):
        for j in range(i + 1, len(weights)):
            if rems[i] == rems[j]:
                assert extras[i] >= extras[j], (i, j, parts)
            elif rems[i] > rems[j]:
                assert extras[i] >= extras[j]  # largest remainders are served first
            else:
                assert extras[i] <= extras[j]


@given(st.integers(min_value=0, max_value=10**9), weights_st, st.randoms(use_true_random=False))
def test_permuting_the_weights(total: int, weights: list[int | Fraction], rnd: object) -> None:
    """Permuting the rules permutes the result, except that rupiah won on a tie follow the new order."""
    order = list(range(len(weights)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    permuted = allocate(total, [weights[k] for k in order])
    original = allocate(total, weights)
    rems = remainders(total, weights)
    for position, k in enumerate(order):
        tied = sum(1 for r in rems if r == rems[k]) > 1
        if not tied:
            assert permuted[position] == original[k]
        else:
            assert abs(permuted[position] - original[k]) <= 1
    # Each class of tied remainders wins the same number of extra rupiah either way.
    for value in set(rems):
        members = [k for k in range(len(weights)) if rems[k] == value]
        assert sum(original[k] for k in members) == sum(permuted[order.index(k)] for k in members)


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=9))
def test_equal_weights_differ_by_at_most_one_and_earlier_first(total: int, n: int) -> None:
    parts = allocate(total, [1] * n)
    assert max(parts) - min(parts) <= 1
    assert parts == sorted(parts, reverse=True)


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (2, [1, 3], [1, 1]),  # remainders tie at 1/2: the earlier weight wins
        (2, [3, 1], [2, 0]),
        (100_001, [Fraction(1, 2), Fraction(15, 100), Fraction(35, 100)], [50_001, 15_000, 35_000]),
        (10, [0, 5, 0, 5], [0, 5, 0, 5]),
        (7, [Fraction(1, 3), Fraction(1, 3), Fraction(1, 3)], [3, 2, 2]),
        (0, [1, 2], [0, 0]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (1, [1, 0], [1, 0]),
    ],
)
def test_worked_examples(total: int, weights: list[int | Fraction], expected: list[int]) -> None:
    assert allocate(total, weights) == expected


@pytest.mark.parametrize(
    ("total", "weights", "message"),
    [
        (10, [], "empty"),
        (10, [1, -1], "weight 1 is negative"),
        (10, [0, 0], "all 2 weights are zero"),
        (10, [0.5, 0.5], "weight 0 is float"),
        (10, [True, 1], "weight 0 is bool"),
        (10.0, [1], "total must be an int"),
        (True, [1], "total must be an int"),
    ],
)
def test_rejects_bad_inputs(total: object, weights: list[object], message: str) -> None:
    with pytest.raises(AllocationError, match=message):
        allocate(total, weights)  # type: ignore[arg-type]


def test_alabama_paradox_exists_so_reversals_must_be_signed() -> None:
    """Documented property: growing the total can shrink a part (why refund deltas are signed)."""
    assert allocate(3, [1, 3, 3]) == [1, 1, 1]
    assert allocate(4, [1, 3, 3]) == [0, 2, 2]
