"""The query layer: Trino over silver (client, catalog sync, analytics views, `lakehouse sql`)."""
