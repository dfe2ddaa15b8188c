"""The data path, in the order a change takes it: `bronze` (what the S3 sink wrote), `silver`
(the Spark Structured Streaming job into Delta), `query` (Trino over silver: views, catalog sync).
Imports `config` and `clients` only."""
