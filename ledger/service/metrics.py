"""The service's Prometheus metrics (docs/http-api.md#get-metrics), exposed with prometheus_client.

Three kinds of figure, each kept where it is true:

- Totals (entries appended, batches and entries the sequencer committed, witness refusals
  and failures) are counters. A worker counts in plain integers on its hot path (the
  sequencer's own `batches`/`entries`, `Metrics.appended`, the witnessing's tallies) and
  `Metrics.publish` adds what grew since its last call to the prometheus_client counters:
  when the route answers a scrape, and under `evledger serve` every PUBLISH_SECONDS. So an
  append costs one integer addition, as before, and no file write.
- Facts of the database (tree size, cosigned size, witnessing lag) are read by the worker
  that answers the scrape and exposed as gauges of that scrape (`render(facts=...)`): every
  worker reads the same database, so any of them answers the same.
- `evledger_sequencer_pending` is one worker's queue: a gauge per process, summed over the
  live ones.

Under `evledger serve` the workers are separate processes: the command makes a private
directory per run and names it in PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads
when it is first imported (so before this module is, in every worker). Each worker's
counters and gauge live in memory-mapped files there; a scrape sums the counters of every
worker that ever ran in this run (a restarted worker's counts stay in the total) and the
pending gauges of the live ones (`multiprocess_mode="livesum"`; the files of a worker that
died are dropped when a scrape finds its process gone). Without that variable (an app
made in-process, as the tests do) a plain registry counts for the one process.

The text is format 0.0.4, every value in full (`floatToGoString`: 1234567 prints as
`1.234567e+06`, exact). The totals that used to be gauges without `_total` keep their old
names as gauges too (`GAUGE_ALIASES`), so that dashboards made before the counters still work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, values
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's; `evledger serve` sets it
PUBLISH_SECONDS = 0.25  # how stale another worker's counts may be in a scrape (under `serve`)

# The counters: family name (the exposition adds `_total`), help text. The exposition shows
# the witness ones only under a witness policy.
TOTALS = {
    "evledger_entries_appended": "Entries appended through the service (all workers).",
    "evledger_sequencer_batches": "Batches the sequencers committed (all workers).",
    "evledger_sequencer_entries": "Entries the sequencers' batches committed (all workers).",
    "evledger_witness_refusals": "Witness answers that point at the log: a fork or rollback (all workers).",
    "evledger_witness_failures": "Failed submissions to witnesses or authorities (all workers).",
}
WITNESS_TOTALS = frozenset({"evledger_witness_refusals", "evledger_witness_failures"})
# Totals that were gauges of this very name (no `_total`) before they were counters: the old
# name stays, a gauge of the same value (deprecated; dashboards should move to `NAME_total`).
GAUGE_ALIASES = frozenset(
    {
        "evledger_sequencer_batches",
        "evledger_sequencer_entries",
        "evledger_witness_refusals",
        "evledger_witness_failures",
    }
)
PENDING = "evledger_sequencer_pending"
# The gauges read from the database when scraped: name, help text.
FACTS = {
    "evledger_tree_size": "Entries in the log.",
    "evledger_cosigned_tree_size": "Entries under the newest quorum-cosigned checkpoint.",
    "evledger_witness_lag_seconds": "Age of the oldest checkpoint newer than the newest "
    "quorum-cosigned one (0: none).",
}


@dataclass(frozen=True, slots=True)
class Tallies:
    """What this process counted so far in plain integers; each only grows."""

    batches: int = 0  # the sequencer's committed batches
    entries: int = 0  # the entries of those batches
    refusals: int = 0  # witness answers that point at the log
    failures: int = 0  # failed submissions to witnesses or authorities


@dataclass(frozen=True, slots=True)
class _Instruments:
    totals: dict[str, Counter]  # by family name (TOTALS)
    pending: Gauge


def _instruments(registry: CollectorRegistry | None) -> _Instruments:
    totals = {name: Counter(name, text, registry=registry) for name, text in TOTALS.items()}
    pending = Gauge(
        PENDING,
        "Envelopes waiting to be integrated (all live workers).",
        registry=registry,
        multiprocess_mode="livesum",
    )
    return _Instruments(totals, pending)


@cache
def _process_instruments() -> _Instruments:
    """The instruments of this process in multiprocess mode: one set, whatever the number of apps."""
    return _instruments(None)


class Metrics:
    """The instruments of this process, and the exposition of every worker's (see the module docstring)."""

    __slots__ = ("_appended", "_directory", "_instruments", "_published", "_source")

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        """Multiprocess mode when `environ` names PROMETHEUS_MULTIPROC_DIR, a plain registry otherwise.

        Raises RuntimeError when prometheus_client was imported before that variable was
        set: its counts would stay in this process and every scrape would show zeros.
        """
        self._appended = 0
        self._published = (0, Tallies())
        directory = environ.get(MULTIPROC_DIR_ENV)
        self._directory = Path(directory) if directory else None
        self._source: MultiProcessCollector | CollectorRegistry
        if self._directory is None:
            self._source = CollectorRegistry(auto_describe=False)
            self._instruments = _instruments(self._source)
            return
        if not getattr(values.ValueClass, "_multiprocess", False):
            msg = f"prometheus_client was imported before {MULTIPROC_DIR_ENV} was set"
            raise RuntimeError(msg)
        self._instruments = _process_instruments()
        self._source = MultiProcessCollector(None, path=str(self._directory))  # type: ignore[no-untyped-call]

    @property
    def shared(self) -> bool:
        """Whether several processes share the counts (multiprocess mode): publish them periodically."""
        return self._directory is not None

    def appended(self, count: int) -> None:
        """Count entries this process appended (the hot path: an integer addition)."""
        self._appended += count

    def publish(self, tallies: Tallies, pending: int) -> None:
        """Add what this process counted since the last call to the counters; set its pending gauge."""
        appended, before = self._published
        grown = {
            "evledger_entries_appended": self._appended - appended,
            "evledger_sequencer_batches": tallies.batches - before.batches,
            "evledger_sequencer_entries": tallies.entries - before.entries,
            "evledger_witness_refusals": tallies.refusals - before.refusals,
            "evledger_witness_failures": tallies.failures - before.failures,
        }
        for name, amount in grown.items():
            if amount > 0:
                self._instruments.totals[name].inc(amount)
        self._published = (self._appended, tallies)
        self._instruments.pending.set(pending)

    def retire(self) -> None:
        """After this process served: its pending gauge leaves the sum (its counters stay in the totals)."""
        if self._directory is not None:
            mark_process_dead(os.getpid(), str(self._directory))  # type: ignore[no-untyped-call]

    def render(self, facts: Mapping[str, float], *, witnessing: bool) -> str:
        """The exposition text: the counters and pending gauge of every worker, and `facts`.

        `facts` maps names of FACTS to the values read from the database for this scrape;
        without `witnessing` the witness totals are left out.
        """
        unknown = facts.keys() - FACTS.keys()
        if unknown:
            raise ValueError(f"not a database gauge: {sorted(unknown)}")
        if self._directory is not None:
            _forget_dead_processes(self._directory)
        scrape = _Scrape(facts, self._source, witnessing=witnessing)
        return generate_latest(scrape).decode()


class _Scrape(Collector):
    """One scrape's collector: the database gauges, then the process counters and their aliases."""

    def __init__(
        self,
        facts: Mapping[str, float],
        source: MultiProcessCollector | CollectorRegistry,
        *,
        witnessing: bool,
    ) -> None:
        self.facts, self.source, self.witnessing = facts, source, witnessing

    def collect(self) -> Iterator[Metric]:
        for name, value in self.facts.items():
            yield GaugeMetricFamily(name, FACTS[name], value=value)
        families = sorted(self.source.collect(), key=lambda family: family.name)
        for family in families:
            if family.name in WITNESS_TOTALS and not self.witnessing:
                continue
            # A plain registry adds `_created` samples; multiprocess mode has none: show neither.
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family
            if family.name in GAUGE_ALIASES and family.type == "counter":
                total = sum((s.value for s in family.samples if s.name == family.name + "_total"), 0.0)
                yield GaugeMetricFamily(
                    family.name, f"Deprecated: {family.name}_total as a gauge.", value=total
                )


def _forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of workers that are gone (a crash, a kill: they could not retire)."""
    me = os.getpid()
    for path in directory.glob("gauge_live*_*.db"):
        pid_text = path.stem.rsplit("_", 1)[-1]
        if pid_text.isdigit() and int(pid_text) != me and not _alive(int(pid_text)):
            mark_process_dead(int(pid_text), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process has that id now: our worker (our user) is gone
        return False
    return True
