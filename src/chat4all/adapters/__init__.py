"""Adapters: implementations of the ports on real drivers. Each imports its driver and the
ports, never another adapter."""
