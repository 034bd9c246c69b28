"""The posting plan alone, offline: the ledger's real input through the pure steps, timed per journal line.

    python -m bench.plan_only [--orders 5000] [--seed 7] [--batch 1000] [--repeat 3] [--profile]

Issue 19 asks for the ledger's Python CPU per journal line; the service's figure mixes the plan with decoding, SQL,
the chain hash and the outbox. This runs the plan step on its own, in seconds, with no database:

1. **Input.** The ledger's input for ``--orders`` seeded orders, made by the orders stage alone
   (:func:`bench.ledger_only.prefill`, which needs the local stack once) and kept in the state directory, so later
   runs read the file.
2. **Batches.** Cut like a consumer's fetch over every partition: up to ``--batch`` records a batch, the same share
   from each partition, in offset order.
3. **Plan.** Each batch goes through :func:`~services.ledger.posting_plan.check_arrivals` and
   :func:`~services.ledger.posting_plan.plan_postings`. What the use case would load — the orders' facts, parked
   events, ended orders, stored request hashes, inmate balances — comes from :class:`InMemoryLedger`, which keeps
   what earlier batches "wrote" the way the adapters store it: the facts round-trip through their JSON.
4. **Figures.** Microseconds of envelope decoding and of planning per journal line (the best of ``--repeat``
   passes, garbage collection tuned as the service tunes it), and a **digest** of everything planned: each entry,
   refusal, parked and closed event, conflict and changed fact. Two commits that plan the same books give the same
   digest, so a faster plan can be checked to change nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import json
import pstats
import sys
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson
import yaml

from infra.environment import ROOT, state_dir
from infra.messaging.envelope import Envelope
from services.ledger.domain import accounts
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.journal import JournalEntry
from services.ledger.domain.policy import SplitPolicy
from services.ledger.domain.policy_file import parse_policies
from services.ledger.posting_plan import (
    PostingInputs,
    PostingPlan,
    Refused,
    check_arrivals,
    lookup_keys,
    plan_postings,
    refund_accounts,
)
from services.ledger.requests import Checked, RecentCompletions

POLICIES = ROOT / "deploy" / "demo" / "policies.yaml"

Record = tuple[str, int, bytes]
"""One input record: (topic, partition, value)."""


class Digest(Protocol):
    """A running hash (``hashlib.sha256()``)."""

    def update(self, data: bytes, /) -> None: ...


def cut_batches(records: Iterable[Record], size: int) -> list[list[Record]]:
    """``records`` in batches of at most ``size``: each batch takes an equal share from every partition that has
    records left, each partition in its order (as a consumer's fetch over all of them)."""
    parts: dict[tuple[str, int], deque[Record]] = defaultdict(deque)
    for record in records:
        parts[(record[0], record[1])].append(record)
    queues = [parts[k] for k in sorted(parts)]
    share = max(1, size // max(1, len(queues)))
    batches: list[list[Record]] = []
    while any(queues):
        batch: list[Record] = []
        for queue in queues:
            for _ in range(min(share, len(queue))):
                batch.append(queue.popleft())
        batches.append(batch)
    return batches


@dataclass
class InMemoryLedger:
    """What the posting use case reads and writes, kept in memory between batches."""

    facts: dict[str, tuple[str, dict[str, object], dict[str, object] | None, int]] = field(default_factory=dict)
    parked: dict[str, list[Envelope]] = field(default_factory=lambda: defaultdict(list))
    ended: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    entries: int = 0
    lines: int = 0
    times_parked: int = 0

    def inputs(
        self, envelopes: Sequence[Envelope], policies: Sequence[SplitPolicy], recent: RecentCompletions
    ) -> tuple[PostingInputs, list[Refused]]:
        """The plan's inputs for one batch (load), and the refusals of arrivals that break their contract."""
        checked = Checked()
        relevant, refused = check_arrivals(envelopes, checked)
        keys = {e.subject for e in relevant}
        facts = {k: OrderFacts.stored(k, *self.facts[k]) for k in sorted(keys) if k in self.facts}
        work = [*(e for k in sorted(keys) for e in self.parked.pop(k, [])), *relevant]
        ended = {k: self.ended[k] for k in keys if k in self.ended}
        known = {k: self.hashes[k] for k in lookup_keys(work) if k in self.hashes}
        balances = {a: self.balances[a] for a in refund_accounts(work, facts, recent) if a in self.balances}
        return PostingInputs(work, facts, policies, known, balances, ended, {}, (), checked), refused

    def write(self, plan: PostingPlan) -> None:
        """Keep what the batch changed (write), as the adapters store it."""
        for f in plan.facts.values():
            if f.is_new or f.changed:
                state = orjson.loads(orjson.dumps(f.state()))  # stored as JSON, read back as JSON
                self.facts[f.order_key] = (f.lapas_id, f.completion, state, f.refunded_gross)
        for envelope, _ in plan.parked:
            self.parked[envelope.subject].append(envelope)
        self.times_parked += len(plan.parked)
        self.ended.update(plan.ended)
        for entry, _ in plan.entries:
            if entry.posting_key in self.hashes:
                continue
            self.hashes[entry.posting_key] = entry.request_hash
            self.entries += 1
            for line in entry.lines:
                self.lines += 1
                self.balances[line.account] += accounts.normal_delta(line.account, line.side, line.amount)


def _fields(e: JournalEntry) -> list[object]:
    lines = [[x.account, x.side.value, x.amount] for x in e.lines]
    time = e.effective_at.isoformat()
    return [e.posting_key, e.request_hash, e.kind.value, e.memo, time, lines, e.policy_ref, e.reverses, e.order_key]


def digest_of(plan: PostingPlan, refused: Sequence[Refused], into: Digest) -> None:
    """Add everything ``plan`` decided (and the arrivals ``refused``) to the running digest ``into``."""
    for e, source in plan.entries:
        into.update(orjson.dumps([*_fields(e), e.batch_id, source]))
    into.update(orjson.dumps([[str(r.envelope.event_id), r.reason] for r in [*refused, *plan.refused]]))
    into.update(orjson.dumps([[str(e.event_id), w] for e, w in [*plan.parked, *plan.closed]]))
    into.update(orjson.dumps([[c.posting_key, c.existing_hash, c.new_hash] for c in plan.conflicts]))
    changed = sorted((k, f.state()) for k, f in plan.facts.items() if f.is_new or f.changed)
    into.update(orjson.dumps(changed, option=orjson.OPT_SORT_KEYS))


@dataclass(frozen=True)
class PlanRun:
    """One pass over the input: what was planned, how long decoding and planning took, and the digest."""

    entries: int
    lines: int
    decode_s: float
    plan_s: float
    digest: str

    @property
    def plan_us_per_line(self) -> float:
        """Microseconds of check and plan per journal line."""
        return self.plan_s * 1e6 / self.lines if self.lines else 0.0

    @property
    def decode_us_per_line(self) -> float:
        """Microseconds of envelope decoding per journal line."""
        return self.decode_s * 1e6 / self.lines if self.lines else 0.0


def run_plan(
    batches: Sequence[Sequence[Record]], policies: Sequence[SplitPolicy], ledger: InMemoryLedger | None = None
) -> PlanRun:
    """One pass: every batch decoded, loaded from, planned and written to ``ledger`` (default a fresh one)."""
    ledger = ledger if ledger is not None else InMemoryLedger()
    recent, digest = RecentCompletions(), hashlib.sha256()
    decode_s = plan_s = 0.0
    for batch in batches:
        t0 = time.perf_counter()
        envelopes = [Envelope.from_bytes(value) for _, _, value in batch]
        t1 = time.perf_counter()
        inputs, refused = ledger.inputs(envelopes, policies, recent)
        plan = plan_postings(inputs, recent)
        t2 = time.perf_counter()
        decode_s, plan_s = decode_s + t1 - t0, plan_s + t2 - t1
        digest_of(plan, refused, digest)
        ledger.write(plan)
    return PlanRun(ledger.entries, ledger.lines, decode_s, plan_s, digest.hexdigest())


def load_input(orders: int, seed: int) -> list[Record]:
    """The ledger's input for ``orders`` seeded orders: from the state directory, else made by a prefill (needs the
    local stack) and kept there."""
    path = state_dir() / "bench" / f"plan-input-{orders}-{seed}.jsonl"
    if not path.exists():
        from bench.ledger_only import prefill  # needs Kafka and PostgreSQL: only when there is no file yet

        made = asyncio.run(prefill(orders, seed, print))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for recs in made.values():
                for r in recs:
                    out.write(
                        json.dumps({"topic": r.topic, "partition": r.partition, "value": r.value.decode()}) + "\n"
                    )
    return [(d["topic"], d["partition"], d["value"].encode()) for d in map(json.loads, path.open())]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run the passes, print the figures (or a profile)."""
    parser = argparse.ArgumentParser(prog="python -m bench.plan_only", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1000, help="records per batch")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is reported")
    parser.add_argument("--profile", action="store_true", help="one pass under cProfile, by own time")
    args = parser.parse_args(argv)
    batches = cut_batches(load_input(args.orders, args.seed), args.batch)
    policies = parse_policies(yaml.safe_load(POLICIES.read_text()), str(POLICIES))
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)  # as the service process runs (infra.runtime)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run_plan, batches, policies)
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(30)
        return
    runs = [run_plan(batches, policies) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r.plan_s)
    print(
        f"{sum(map(len, batches)):,} records in {len(batches)} batches: "
        f"{best.entries:,} entries, {best.lines:,} lines; "
        f"plan {best.plan_us_per_line:.2f} µs/line (passes {', '.join(f'{r.plan_us_per_line:.2f}' for r in runs)}), "
        f"decode {best.decode_us_per_line:.2f} µs/line; digest {best.digest[:16]}"
    )
    if len({r.digest for r in runs}) != 1:
        raise SystemExit("the passes planned different books: the plan is not deterministic")


if __name__ == "__main__":
    main()
