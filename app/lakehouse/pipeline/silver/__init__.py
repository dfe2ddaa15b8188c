"""Silver: a Spark Structured Streaming job that MERGEs bronze CDC events into Delta tables."""
