"""The read side: what `status`, `history`, `drift show`, the report, the dashboard's
pages and `/metrics` show, as data (the table, the page and `--json` print the same)."""
