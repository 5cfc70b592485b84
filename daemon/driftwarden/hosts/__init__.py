"""The long-running hosts: `driftwarden run` (single/, one host) and `driftwarden worker`
(distributed/, any number of hosts on a shared PostgreSQL store), and what they share —
the reload and retry lifecycle, schedules, requests, skip streaks, the outbox sender and
the systemd notify socket. They drive the application core (driftwarden.service)."""
