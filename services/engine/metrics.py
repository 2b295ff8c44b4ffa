"""Prometheus metrics under TGI's names, so TGI dashboards work against the local server.

TGI's counters are exposed without the ``_total`` suffix that prometheus_client would add, so
counters are rendered here; histograms and gauges use prometheus_client in a registry of
their own (one per app, so tests can run several servers in one process).
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TOKEN_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._help = {
            "tgi_request_count": "Requests received.",
            "tgi_request_success": "Requests that completed.",
            "tgi_request_failure": "Requests that failed, by error type.",
        }

        def hist(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, buckets=buckets, registry=self.registry)

        self.duration = hist("tgi_request_duration", "End-to-end request time.", DURATION_BUCKETS)
        self.validation_duration = hist(
            "tgi_request_validation_duration", "Tokenization and validation.", DURATION_BUCKETS
        )
        self.queue_duration = hist(
            "tgi_request_queue_duration", "Wait before the prefill starts.", DURATION_BUCKETS
        )
        self.inference_duration = hist(
            "tgi_request_inference_duration", "Prefill and decode time.", DURATION_BUCKETS
        )
        self.time_per_token = hist(
            "tgi_request_mean_time_per_token_duration",
            "Mean decode time per token.",
            DURATION_BUCKETS,
        )
        self.generated_tokens = hist(
            "tgi_request_generated_tokens", "Generated tokens per request.", TOKEN_BUCKETS
        )
        self.input_length = hist(
            "tgi_request_input_length", "Prompt tokens per request.", TOKEN_BUCKETS
        )
        self.max_new_tokens = hist(
            "tgi_request_max_new_tokens", "max_new_tokens asked per request.", TOKEN_BUCKETS
        )
        self.queue_size = Gauge("tgi_queue_size", "Requests waiting.", registry=self.registry)
        self.batch_size = Gauge(
            "tgi_batch_current_size", "Requests being decoded.", registry=self.registry
        )

    def count(self, name: str, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + 1

    def counter_value(self, name: str, **labels: str) -> float:
        return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> bytes:
        lines: list[str] = []
        with self._lock:
            counters = dict(self._counters)
        for name, doc in self._help.items():
            lines += [f"# HELP {name} {doc}", f"# TYPE {name} counter"]
            samples = [(labels, v) for (n, labels), v in counters.items() if n == name]
            if not samples and name != "tgi_request_failure":
                samples = [((), 0.0)]
            for labels, value in sorted(samples):
                label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{label_text}}} {value}" if labels else f"{name} {value}")
        return "\n".join(lines).encode() + b"\n" + generate_latest(self.registry)
