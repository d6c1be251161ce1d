"""tradecycle: one stateless AI paper-trading cycle per invocation."""

__version__ = "0.1.0"
