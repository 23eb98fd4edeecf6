"""Per-server call counters and latency histograms, exported in Prometheus format on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    """One registry per server instance, so several servers (or tests) never share counters."""

    def __init__(self, server_name: str) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "revops_tool_calls",
            "Tool calls by tool and result code",
            ["server", "tool", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "revops_tool_latency_seconds",
            "Tool call latency",
            ["server", "tool"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.server_name = server_name

    def observe(self, tool: str, status: str, seconds: float) -> None:
        self.calls.labels(self.server_name, tool, status).inc()
        self.latency.labels(self.server_name, tool).observe(seconds)

    def count(self, tool: str, status: str = "ok") -> float:
        value: float = self.calls.labels(self.server_name, tool, status)._value.get()
        return value

    def render(self) -> bytes:
        return generate_latest(self.registry)
