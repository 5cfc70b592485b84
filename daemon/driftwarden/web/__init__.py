"""`driftwarden serve`: the read-only dashboard, `/metrics` and `/healthz` (Starlette,
Jinja2 templates, uvicorn). A skin over the service layer like the CLI."""
