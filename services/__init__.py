"""One package per API service; each owns its models, logic and servicer."""
