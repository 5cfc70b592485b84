"""Shell completion through the installed console script, as bash asks for it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.cli import DRIFTWARDEN
from tests.conftest import REPO

CONFIG = """
[[targets]]
name = "ops-mail"
urls = ["mailto://ops@example.com"]

[[targets]]
name = "chat"
urls = ["json://127.0.0.1:9/hook"]
"""


def complete(config: Path, words: str) -> list[str]:
    """What `driftwarden` offers for the last word of `words` (bash completion)."""
    env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_CONFIG"}
    env |= {"_DRIFTWARDEN_COMPLETE": "complete_bash", "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}  # fmt: skip
    result = subprocess.run([str(DRIFTWARDEN)], env=env, capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    return result.stdout.split()


def test_stack_and_target_names_complete_from_the_config(tmp_path: Path) -> None:
    project = REPO / "stacks" / "local-demo"
    config = tmp_path / "driftwarden.toml"
    config.write_text(CONFIG + "".join(
        f'[[stacks]]\nname = "{name}"\nproject_dir = "{project}"\nstack = "dev"\n'
        for name in ("web-prod", "web-staging", "db-prod")
    ))  # fmt: skip
    base = f"driftwarden --config {config}"
    assert complete(config, f"{base} scan web") == ["web-prod", "web-staging"]
    assert complete(config, f"{base} drift show d") == ["db-prod"]
    assert complete(config, f"{base} report ") == ["web-prod", "web-staging", "db-prod"]
    assert complete(config, f"{base} history --stack web-p") == ["web-prod"]
    assert complete(config, f"{base} notify digest --target o") == ["ops-mail"]
    assert complete(config, f"{base} sc") == ["scan"]
    broken = tmp_path / "broken.toml"
    broken.write_text("[[stacks]\n")
    assert complete(broken, f"driftwarden --config {broken} scan ") == [], "no error text"


def test_show_completion_prints_a_script_for_the_shell() -> None:
    result = subprocess.run([str(DRIFTWARDEN), "--show-completion", "bash"],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "_DRIFTWARDEN_COMPLETE=complete_bash" in result.stdout
