"""Native service launchers, one module per service, started in dependency order by stack.py."""
