"""The durable store: SQLite behind the engine's one writer, read by consoles and tools."""
