"""The console's views, one module each."""
