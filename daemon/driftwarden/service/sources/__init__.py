"""Audit sources at work: the platform's events read into the store, the objects the
stacks manage, and the checks those events request."""
