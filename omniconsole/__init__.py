"""omniconsole: omnichannel messaging orchestration with a terminal ops console."""

__version__ = "0.1.0"
