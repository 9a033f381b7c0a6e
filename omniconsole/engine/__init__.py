"""The engine's drivers: replay, partitions and the live service, behind one `Engine`."""
