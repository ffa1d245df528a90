"""Blobs on the local disk (embedded profile)."""
