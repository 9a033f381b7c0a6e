"""The HTTP front of `serve`: Segment-compatible ingest, webhooks, health and metrics."""
