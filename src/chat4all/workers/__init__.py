"""Workers on the bus: each is a consumer group that commits its offsets only after its effect
is durable, and whose effects are idempotent, so a redelivered event changes nothing."""
