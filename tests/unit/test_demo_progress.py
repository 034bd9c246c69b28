"""The demo's progress bar counts what it says: webhooks sent out of the webhooks the day delivers (issue 18).

It used to be labelled webhooks while counting plan steps (status changes and lost webhooks too), so its total
was about twice the webhooks the gateway then reported.
"""

from __future__ import annotations

from karya.demo_sim import webhook_progress
from sim.plan import FaultRates, StepKind, plan_day
from sim.state import SimState
from sim.traffic import TrafficRunner
from tests.unit.sim.sim_support import NOW, SETTINGS, FakeGateway, catalogue, transport


async def test_the_bar_counts_webhooks_sent_out_of_those_planned() -> None:
    gateway = FakeGateway()
    plan = plan_day(catalogue(), 120, 11, faults=FaultRates(duplicate=0.1, lost=0.05, tampered=1, wrong_secret=1))
    runner = TrafficRunner(SimState(), SETTINGS, transport=transport(gateway.app()), anchor=NOW - 14 * 86_400)
    seen: list[tuple[int, int]] = []
    bar = webhook_progress(runner, lambda done, total: seen.append((done, total)))
    summary = await runner.run(plan, on_progress=bar)

    deliveries = sum(1 for step in plan.steps if step.kind is StepKind.DELIVER)
    assert deliveries < len(plan.steps)  # status changes and lost webhooks are steps, not webhooks
    assert {total for _, total in seen} == {deliveries}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (deliveries, deliveries)
    assert summary.webhooks_sent == deliveries == len(gateway.received)  # what the demo then prints as sent
