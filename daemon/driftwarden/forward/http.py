"""An HTTP(S) endpoint taking NDJSON: one POST per batch, one event per line; a 2xx
answer means the batch was taken."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from driftwarden.forward.message import CONNECT_TIMEOUT, Message

CONTENT_TYPE = "application/x-ndjson"


class HttpSender:
    def __init__(self, url: str, *, token: str | None = None, ca_file: Path | None = None) -> None:
        self._url = url
        self._token = token
        self._context = (
            ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            if url.lower().startswith("https://")
            else None
        )

    def send(self, messages: Sequence[Message]) -> None:
        body = "".join(m.body + "\n" for m in messages).encode("ascii")
        request = urllib.request.Request(self._url, data=body, method="POST")
        request.add_header("Content-Type", CONTENT_TYPE)
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(
                request, timeout=CONNECT_TIMEOUT, context=self._context
            ) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise OSError(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise OSError(str(exc.reason)) from None

    def confirmed(self) -> bool:
        return True  # a batch is taken when its POST answers 2xx

    def close(self) -> None:
        pass
