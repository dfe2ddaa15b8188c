"""A/B probes of silver's parts (`python -m tools.bench --help`)."""
