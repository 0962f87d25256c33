"""The live runner: sources -> effects -> sinks, its CLI (``python -m realtime``)."""
