"""The application core, in one folder per concern: scan/ (the scan pipeline), sources/
(audit sources), messages/ (notifications), trust/ (signed digests, forwarding), read/
(what every front end shows); beside them the composition root (runtime.py, statedir.py,
logs.py, locks.py) and `config check`'s preflight. Over engine, store, notify, drift and
config; below the public API (driftwarden.api) and the hosts."""
