"""Order intake: webhook signatures, normalisation into ``Order``, and the intake service."""
