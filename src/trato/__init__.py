"""trato: one customer memory, the right message on the right channel at the right moment."""

__version__ = "0.1.0"
