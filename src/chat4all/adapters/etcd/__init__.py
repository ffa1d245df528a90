"""etcd v3 adapters: the cluster profile's registry (discovery, config, elections)."""
