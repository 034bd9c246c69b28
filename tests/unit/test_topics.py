"""Each service's topics are its base names under the deployment's prefix, built by one function."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.messaging.topics import BASE_NAMES
from services.gateway.emit import GatewayTopics
from services.ledger.outbound import LedgerTopics
from services.orders.outbound import OrdersTopics


@pytest.mark.parametrize("topics", [GatewayTopics, OrdersTopics, LedgerTopics])
def test_with_prefix_puts_every_base_name_under_the_prefix(topics: Any) -> None:
    base = topics()
    names = dataclasses.astuple(base)
    assert set(names) <= set(BASE_NAMES)
    assert dataclasses.astuple(topics.with_prefix("t1.")) == tuple(f"t1.{n}" for n in names)
    assert topics.with_prefix("") == base
