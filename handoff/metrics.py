"""Counters and latency histograms of the handoff, in the Prometheus text format of /metrics.

Label values come from fixed vocabularies (``LLM_STATUSES``, ``TICKET_FIELD_LABELS``); anything
else (e.g. an unknown key in the ticket model's JSON) is counted as ``other`` and escaped
(``ivr.core.promtext``), so no model answer can add a series or a line to /metrics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ivr.core.promtext import counter_lines

# statuses of LLM summaries and ticket fills (handoff.summary, handoff.tickets, assist)
LLM_STATUSES = ("ok", "timeout", "error", "invalid", "disabled", "skipped")
# ticket fields the model got wrong or may not write (handoff.tickets); unknown keys: other
TICKET_FIELD_LABELS = ("type", "problem", "requested_action", "priority", "line",
                       "account_tail", "contact", "other")
BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS_S))
    total: int = 0
    sum: float = 0.0
    max: float = 0.0
    last: float = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        self.last = value
        self.max = max(self.max, value)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str, help_text: str) -> list[str]:
        out = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        out += [f'{name}_bucket{{le="{b}"}} {c}' for b, c in zip(self.buckets, self.counts,
                                                                  strict=True)]
        out += [f'{name}_bucket{{le="+Inf"}} {self.total}', f"{name}_sum {self.sum:.6f}",
                f"{name}_count {self.total}",
                f"# TYPE {name}_max gauge", f"{name}_max {self.max:.6f}",
                f"# TYPE {name}_last gauge", f"{name}_last {self.last:.6f}"]
        return out


@dataclass
class HandoffMetrics:
    pops: int = 0  # screen pops built
    assigned: int = 0  # pops delivered to a ringing agent
    unknown_calls: int = 0  # AgentCalled for a channel without a pop (failsafe calls)
    redis_failures: int = 0
    malformed_messages: int = 0  # pop messages on Redis that were not JSON or failed to apply
    writes_dropped: int = 0  # Redis writes dropped: the queue full, or too many kept in an outage
    deliveries_dropped: int = 0  # desktop updates dropped because a desktop was too slow
    llm: Counter[str] = field(default_factory=Counter)  # summaries by status
    tickets: Counter[str] = field(default_factory=Counter)  # LLM ticket fills by status
    ticket_fields_dropped: Counter[str] = field(default_factory=Counter)  # invalid LLM fields
    build_s: Histogram = field(default_factory=Histogram)  # build_pop time
    deliver_s: Histogram = field(default_factory=Histogram)  # AgentCalled -> desktop queue
    publish_s: Histogram = field(default_factory=Histogram)  # AgentCalled -> Redis publish
    llm_s: Histogram = field(default_factory=lambda: Histogram(
        (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0), [0] * 7))

    def lines(self, desktops: int) -> list[str]:
        out = []
        for name, value, kind in (
            ("ivr_handoff_pops_total", self.pops, "counter"),
            ("ivr_handoff_pops_assigned_total", self.assigned, "counter"),
            ("ivr_handoff_unknown_calls_total", self.unknown_calls, "counter"),
            ("ivr_handoff_redis_failures_total", self.redis_failures, "counter"),
            ("ivr_handoff_malformed_messages_total", self.malformed_messages, "counter"),
            ("ivr_handoff_redis_writes_dropped_total", self.writes_dropped, "counter"),
            ("ivr_handoff_desktop_updates_dropped_total", self.deliveries_dropped, "counter"),
            ("ivr_handoff_desktops_connected", desktops, "gauge"),
        ):
            out += [f"# TYPE {name} {kind}", f"{name} {value}"]
        out.append("# TYPE ivr_handoff_llm_summaries_total counter")
        out += counter_lines("ivr_handoff_llm_summaries_total", "status", self.llm,
                             LLM_STATUSES)
        out.append("# TYPE ivr_handoff_llm_tickets_total counter")
        out += counter_lines("ivr_handoff_llm_tickets_total", "status", self.tickets,
                             LLM_STATUSES)
        out.append("# TYPE ivr_handoff_llm_ticket_fields_dropped_total counter")
        out += counter_lines("ivr_handoff_llm_ticket_fields_dropped_total", "field",
                             self.ticket_fields_dropped, TICKET_FIELD_LABELS)
        out += self.build_s.lines("ivr_handoff_pop_build_seconds", "build_pop time")
        out += self.deliver_s.lines("ivr_handoff_pop_delivery_seconds",
                                    "AMI AgentCalled to the agent desktop's queue")
        out += self.publish_s.lines("ivr_handoff_pop_publish_seconds",
                                    "AMI AgentCalled to the pop published on Redis")
        out += self.llm_s.lines("ivr_handoff_llm_summary_seconds", "LLM summary round trip")
        return out
