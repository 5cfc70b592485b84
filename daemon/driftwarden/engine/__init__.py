"""The Pulumi engine, driven through the Automation API (the only user of it).

Import from the modules: `api` (light types), `runner` (the engine), `isolated` (the
daemon's worker processes), `errors`. This file imports nothing, so a command that
never runs the engine never loads the Pulumi SDK."""
