"""The pipeline monitor (`python -m lakehouse.apps.monitor`): metrics no single service can report itself.

It polls the source's replication slot, Kafka Connect's connector and task states, the bronze
sink's consumer lag, and per-table freshness read from silver through Trino, and serves them as
`lakehouse_*` metrics for Prometheus. Metrics the services know themselves (silver batches,
bronze writes, catalog sync) stay in those services.
"""
