"""OpenTelemetry tracing: one trace per job, from the API request through every worker.

Spans are always made in-process, so every log line and every job row carries a real trace id
even when nothing is exported; they leave the process only when ``TANDEM_OTLP_ENDPOINT`` is set
(OTLP over HTTP, e.g. an OpenTelemetry Collector, Jaeger or Tempo). The trace crosses services
inside the Celery messages: the official Celery instrumentation writes the W3C ``traceparent``
into each message's headers when it is sent and continues the trace when a worker runs it, so
the tasks a step publishes are children of that step.

The API makes its request spans only while spans are exported (:func:`exporting`): with nothing
to export, a server span per request costs more than the request's own work. A job submitted
then still gets a trace of its own (:func:`job_trace`), stored on its row and carried to the
workers in its first message, so the workers' spans and log lines share it as before.
"""

from __future__ import annotations

import logging
import random
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import format_span_id, format_trace_id

from shared.settings import CommonSettings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured_pid: int | None = None


def configure_tracing(service: str, settings: CommonSettings) -> None:
    """Install this process's tracer provider and, when spans are exported, the Celery
    instrumentation (once per pid).

    Per pid because prefork pool processes must each start their own exporter thread: a
    thread of the parent does not survive the fork.
    """
    import os

    global _configured_pid
    with _lock:
        if _configured_pid == os.getpid():
            return
        provider = TracerProvider(
            resource=Resource.create(
                {
                    "service.name": f"tandem-{service}",
                    "deployment.environment": settings.environment,
                }
            ),
            sampler=ParentBased(TraceIdRatioBased(settings.otlp_sample_ratio)),
        )
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        # With no exporter its hooks on every publish and every task would cost CPU on each
        # message and record nothing.
        if exporting(settings):
            from opentelemetry.instrumentation.celery import CeleryInstrumentor

            instrumentor = CeleryInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=provider)
        _configured_pid = os.getpid()


def exporting(settings: CommonSettings) -> bool:
    """Whether this process's spans leave it (an OTLP endpoint is configured)."""
    return bool(settings.otlp_endpoint)


def job_trace(settings: CommonSettings) -> tuple[str, str]:
    """The trace id (hex) of a job being submitted and the W3C ``traceparent`` its first
    message carries: the current span's, else a new trace sampled as the configured ratio
    would sample it."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        trace_id, span_id, flags = context.trace_id, context.span_id, int(context.trace_flags)
    else:
        trace_id, span_id = random.getrandbits(128) or 1, random.getrandbits(64) or 1
        bound = TraceIdRatioBased.get_bound_for_rate(settings.otlp_sample_ratio)
        flags = int(trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < bound)
    hex_id = format_trace_id(trace_id)
    return hex_id, f"00-{hex_id}-{format_span_id(span_id)}-{flags:02x}"


def current_ids() -> dict[str, str]:
    """The current span's trace and span ids as hex, or nothing outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format_trace_id(context.trace_id),
        "span_id": format_span_id(context.span_id),
    }


def current_trace_id() -> str | None:
    return current_ids().get("trace_id")


def shutdown() -> None:
    """Flush spans still queued (a worker process exiting)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
