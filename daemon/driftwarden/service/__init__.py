"""The application layer: the scan flow, remediation, notifications, the daemon and the
views every front end prints, over engine, store, notify, drift and config."""
