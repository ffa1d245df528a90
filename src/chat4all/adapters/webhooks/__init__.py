"""The outside world of client webhooks: DNS resolution and HTTP delivery."""
