"""Pure domain logic: no actors, no adapters, no TUI, no channel SDKs."""
