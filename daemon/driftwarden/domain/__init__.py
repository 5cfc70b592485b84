"""The domain's vocabulary (model), schedules and errors: imports nothing of driftwarden."""
