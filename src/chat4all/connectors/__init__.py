"""The built-in channel connectors (registered as `chat4all.connectors` entry points)."""
