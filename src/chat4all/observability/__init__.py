"""Metrics (Prometheus), traces (OpenTelemetry) and JSON logs.

Imported by the edges only (api/, workers/, adapters/, bootstrap/, cli): the domain and the
services never see these libraries; they reach them through small hooks the composition root
installs (`MessageService(on_accepted=...)`, `domain.events` trace-context provider).
"""
