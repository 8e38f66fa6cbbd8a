"""Prometheus text exposition of the service's counters and gauges (text format 0.0.4)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Metrics:
    """Counters kept in-process; gauges are read when scraped."""

    entries_appended: int = 0
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def appended(self, count: int) -> None:
        """Count entries this process appended."""
        self.entries_appended += count

    def responded(self, route: str, status: int) -> None:
        """Count a response by route template and status."""
        self.responses[(route, status)] += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The exposition text; `gauges` maps a metric name to (help, value)."""
        lines = [
            "# HELP evledger_entries_appended_total Entries appended through this process.",
            "# TYPE evledger_entries_appended_total counter",
            f"evledger_entries_appended_total {self.entries_appended}",
            "# HELP evledger_http_responses_total HTTP responses by route and status.",
            "# TYPE evledger_http_responses_total counter",
        ]
        for (route, status), count in sorted(self.responses.items()):
            lines.append(f'evledger_http_responses_total{{route="{route}",status="{status}"}} {count}')
        for name, (text, value) in gauges.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
