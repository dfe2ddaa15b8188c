"""Bronze: the raw Debezium envelope, as JSON lines in object storage, one prefix per topic."""
