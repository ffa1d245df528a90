"""Embedded SQLite adapters: the message store and the event log, on a group-commit writer."""
