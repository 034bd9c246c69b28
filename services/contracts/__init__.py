"""Event contracts shared between services: the ``data`` models of every event type, by type name.

The JSON Schemas in ``schemas/events/`` are generated from these models (``karya schemas gen``) and a test fails
when they drift.
"""

from __future__ import annotations

from pydantic import BaseModel

from services.contracts.registry import EVENT_TYPES, event_model

__all__ = ["EVENT_TYPES", "BaseModel", "event_model"]
