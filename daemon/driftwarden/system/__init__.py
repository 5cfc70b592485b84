"""What driftwarden asks of the host: processes and systemd credentials."""
