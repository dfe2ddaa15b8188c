"""What runs beside the data path and reads it: the demo page (`web`), the metrics exporter and
tracer (`monitor`), scheduled jobs (`jobs`), Superset's API client. Imports the pipeline, never
the launcher."""
