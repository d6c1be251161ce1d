"""Adapters to the outside world: the offline simulator and the real services."""
