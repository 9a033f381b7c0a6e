"""The pykka actor runtime that wires the domain to the adapters."""
