"""Adapters: the only modules that talk to AWS services or to HTTP APIs."""
