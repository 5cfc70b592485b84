"""Pure drift logic: engine events in, SPEC.md change records out."""

from driftwarden.drift.extract import extract_changes, is_secret, stack_was_deployed

__all__ = ["extract_changes", "is_secret", "stack_was_deployed"]
