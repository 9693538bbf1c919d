"""Prometheus metrics for `mimo serve`, MTP acceptance included.

Each app gets its own registry, so several servers (or tests) in one process don't collide.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.api import Timings, Usage

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mimo_requests", "Requests by endpoint and outcome.", ["endpoint", "outcome"], registry=r
        )
        self.running = Gauge("mimo_requests_running", "Requests admitted and not yet finished.", registry=r)
        self.prompt_tokens = Counter("mimo_prompt_tokens", "Prompt tokens processed.", registry=r)
        self.generation_tokens = Counter("mimo_generation_tokens", "Tokens generated.", registry=r)
        self.ttft = Histogram(
            "mimo_time_to_first_token_seconds", "Time to first token.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.duration = Histogram(
            "mimo_request_duration_seconds", "Whole-request generation time.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.drafts_proposed = Counter("mimo_mtp_drafts_proposed", "MTP draft tokens proposed.", registry=r)
        self.drafts_accepted = Counter("mimo_mtp_drafts_accepted", "MTP draft tokens accepted.", registry=r)
        self.acceptance = Gauge(
            "mimo_mtp_acceptance_rate", "Accepted over proposed MTP drafts since start.", registry=r
        )
        self._proposed_total = 0
        self._accepted_total = 0

    def record_outcome(self, endpoint: str, outcome: str) -> None:
        """outcome: "ok", "cancelled", "rejected" (4xx), "overloaded" (503) or "error"."""
        self.requests.labels(endpoint=endpoint, outcome=outcome).inc()

    def record_generation(self, usage: Usage, timings: Timings) -> None:
        self.prompt_tokens.inc(usage.prompt_tokens)
        self.generation_tokens.inc(usage.completion_tokens)
        self.ttft.observe(timings.time_to_first_token_s)
        self.duration.observe(timings.total_s)
        self.drafts_proposed.inc(timings.mtp_drafts_proposed)
        self.drafts_accepted.inc(timings.mtp_drafts_accepted)
        self._proposed_total += timings.mtp_drafts_proposed
        self._accepted_total += timings.mtp_drafts_accepted
        if self._proposed_total:
            self.acceptance.set(self._accepted_total / self._proposed_total)

    def render(self) -> bytes:
        return generate_latest(self.registry)
