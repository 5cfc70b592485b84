"""Which messages a check, a remediation or a digest queues, and their delivery from the
outbox."""
