"""Orchestration: scans (and later the daemon and remediation) over engine, drift and config."""
