"""Audit sources: the platform's own record of changes (the Kubernetes API server's audit
log and webhook) read into PlatformEvents, and the few API calls that go with it."""
