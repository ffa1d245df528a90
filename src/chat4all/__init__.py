"""Chat4All: a self-hostable unified messaging platform."""

__version__ = "0.1.0"
