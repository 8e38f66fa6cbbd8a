"""Prometheus text exposition of the service's counters and gauges (text format 0.0.4)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Metrics:
    """Counters kept in-process; gauges are read when scraped."""

    entries_appended: int = 0

    def appended(self, count: int) -> None:
        """Count entries this process appended."""
        self.entries_appended += count

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The exposition text; `gauges` maps a metric name to (help, value)."""
        lines = [
            "# HELP evledger_entries_appended_total Entries appended through this process.",
            "# TYPE evledger_entries_appended_total counter",
            f"evledger_entries_appended_total {self.entries_appended}",
        ]
        for name, (text, value) in gauges.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
