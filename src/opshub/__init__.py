"""opshub: crews of AI agents doing marketing, analytics, e-commerce and operations work."""

__version__ = "0.1.0"
