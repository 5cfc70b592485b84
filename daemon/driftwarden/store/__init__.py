"""The audit store: the only package that knows SQL (CI's import contract checks it) and
the only one that appends audit events, each by a function named for what it records.

Callers get a `Store` (`db.open_store`), run transactions with `store.read()` and
`store.write()`, and pass the `Session` they get to this package's functions."""

from sqlmodel import Session

__all__ = ["Session"]
