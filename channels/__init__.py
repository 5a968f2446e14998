"""Channel adapters: one module per network, the shared contract in :mod:`channels.base`."""
