"""`lakehouse bench`: freshness per hop under load, throughput, snapshot time, footprint."""
