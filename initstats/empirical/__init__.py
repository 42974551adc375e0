"""The empirical engine: batched He-initialised networks in torch and their gradient statistics."""
