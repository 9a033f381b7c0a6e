"""Channel adapters and storage, each behind a small typed port (see `adapters.channels.ports`)."""
