"""The local demo: four files that drift in the ways real infrastructure does."""

from pathlib import Path

import pulumi
from localfile import LocalFile

config = pulumi.Config()
root = str(Path(config.require("root")).resolve())

motd = LocalFile(
    "motd",
    root=root,
    path=config.get("motdPath") or "motd.txt",
    content=config.get("greeting") or "hello\n",
    mode="0644",
)
settings = LocalFile(
    "settings",
    root=root,
    path="app/settings.ini",
    content=f"[server]\nport = {config.get_int('port') or 8080}\nlog_level = info\n",
    mode="0640",
)
readme = LocalFile(
    "readme",
    root=root,
    path="README.txt",
    content="Managed by Pulumi (stacks/local-demo). Edit me to make drift.\n",
    mode="0644",
)
# The token is a secret: Pulumi stores it encrypted and blinds it in every event.
api_token = LocalFile(
    "api-token",
    root=root,
    path="secrets/api-token",
    content=config.require_secret("apiToken"),
    mode="0600",
)

pulumi.export("root", root)
pulumi.export("files", [motd.path, settings.path, readme.path, api_token.path])
