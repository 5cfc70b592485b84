"""Distributed mode (`[daemon] mode = "distributed"`): `driftwarden worker` on any number of
hosts sharing a PostgreSQL store, its checks queued on procrastinate, one scheduler elected
through the database."""
