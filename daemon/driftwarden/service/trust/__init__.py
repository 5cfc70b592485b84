"""The audit chain made verifiable and kept off the host: signed digests and forwarding."""
