"""Operator and developer tools: the printflow CLI, the local stack, provider sandboxes."""
