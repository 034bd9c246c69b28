"""The AsyncAPI document of every service, generated from the code.

``faststream docs gen karya.docs:app`` writes the same document as ``karya schemas gen``; the committed copy is
``schemas/asyncapi.json`` and a test fails when it drifts from the code.
"""

from __future__ import annotations

from typing import Any

from faststream import FastStream
from faststream.specification import AsyncAPI

from infra.settings import KafkaSettings
from karya.services import SERVICES, wiring_of


def specification() -> AsyncAPI:
    """One AsyncAPI factory over the brokers of all services."""
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:19092")
    brokers = [wiring_of(name, kafka).broker for name in SERVICES]
    return AsyncAPI(
        *brokers,
        title="Karya",
        version="1.0.0",
        description="Order fulfilment and revenue ledger for goods made in lapas workshops. "
        "Every message is an envelope (schemas/envelope.schema.json) whose data is described in schemas/events/.",
    )


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI document as JSON-able data."""
    doc: dict[str, Any] = specification().to_specification().to_jsonable()
    return doc


_spec = specification()
app = FastStream(_spec.brokers[0], specification=_spec)
