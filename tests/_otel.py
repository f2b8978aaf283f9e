"""An OpenTelemetry observer on the SDK's in-memory exporters, for the tests (not a test
module). Importing it needs the ``[otel]`` extra."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lmstrix.observe.otel import OpenTelemetry


class Recorded:
    """An OpenTelemetry observer wired to in-memory exporters."""

    def __init__(self, **options: Any) -> None:
        self.spans_out = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        self.observer = OpenTelemetry(tracer_provider, meter_provider, **options)

    def spans(self) -> List[ReadableSpan]:
        return list(self.spans_out.get_finished_spans())

    def points(self) -> Dict[str, List[Tuple[Dict[str, Any], Any]]]:
        """Metric name -> [(attributes, data point)]."""
        out: Dict[str, List[Tuple[Dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        out.setdefault(metric.name, []).append((dict(point.attributes), point))
        return out

    def text(self) -> str:
        """Every finished span and the metrics so far, as the SDK's JSON."""
        data = self.reader.get_metrics_data()
        spans = "\n".join(span.to_json() for span in self.spans())
        return spans + ("" if data is None else data.to_json())
