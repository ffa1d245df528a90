"""The interfaces the core needs. Adapters in `chat4all.adapters` implement them."""
