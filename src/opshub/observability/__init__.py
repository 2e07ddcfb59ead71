"""Traces, metrics and the process-level wiring an operator's OpenTelemetry and Prometheus read."""
