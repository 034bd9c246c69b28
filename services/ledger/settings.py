"""Settings of the ledger service process, read only from the environment (pydantic-settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LedgerSettings(BaseSettings):
    """The ledger process's own periodic work."""

    model_config = SettingsConfigDict(env_prefix="KARYA_LEDGER_", extra="ignore")

    verify_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often `karya serve ledger` verifies the hash chain as `karya ledger verify` does "
        "(karya_ledger_chain_verified); the links posted since the last pass, and the whole chain at start and "
        "every 24th pass.",
    )
    anchor_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often `karya serve ledger` takes an anchor over every segment's chain head "
        "(ledger.chain_anchors, reason interval); none when nothing was posted since the last anchor.",
    )
    redrive_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often `karya serve ledger` plans again the parked events not planned for "
        "KARYA_LEDGER_REDRIVE_AFTER_S (services/ledger/redrive.py): one parked while its completion posted in an "
        "overlapping transaction posts then, instead of waiting for its order's next event.",
    )
    redrive_after_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a parked event waits since it was last planned before the re-drive plans it again "
        "(an event that legitimately waits is planned about once per this).",
    )
    redrive_limit: int = Field(
        default=500,
        gt=0,
        description="Per re-drive tick, the parked events of the orders of at most this many events (those longest "
        "not planned) are planned again.",
    )
