"""Marketplace simulator for tests and the demo — not production code.

Simulates Shopee, TikTok Shop, Tokopedia and blibli.com as the channel contract describes them: seller APIs
(:mod:`sim.api`) over an in-memory state (:mod:`sim.state`), and a deterministic traffic generator
(:mod:`sim.plan`, :mod:`sim.traffic`) that replays "a marketplace day" of orders from the demo catalogue and
POSTs signed webhooks (:mod:`sim.webhooks`, :mod:`sim.signing`) to the gateway on a loopback address.
Start with :class:`sim.server.Simulator` or ``python -m sim``.
"""

from sim.plan import DEFAULT_MIX, FaultRates, Plan, plan_day
from sim.server import Simulator, run_simulator
from sim.settings import SimSettings, SimSettingsError
from sim.state import SimState
from sim.traffic import ChannelCounters, Progress, TrafficRunner, TrafficSummary

__all__ = [
    "DEFAULT_MIX",
    "ChannelCounters",
    "FaultRates",
    "Plan",
    "Progress",
    "SimSettings",
    "SimSettingsError",
    "SimState",
    "Simulator",
    "TrafficRunner",
    "TrafficSummary",
    "plan_day",
    "run_simulator",
]
