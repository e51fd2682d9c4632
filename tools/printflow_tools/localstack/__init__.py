"""The embedded local stack: moto plus in-process stand-ins for what moto cannot run."""
