"""owl: a blackboard workflow engine for astronomy data processing."""

__version__ = "0.1.0"
