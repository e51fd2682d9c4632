"""Render work: starting it at a provider, polling it, deciding what each answer means."""
