"""The few Kubernetes API calls driftwarden makes itself, with a kubeconfig's credentials:
discovery (which resource is which kind, and which are namespaced) and listing a kind's
objects (the inventory). Reads only; the standard library's HTTPS client.

A kubeconfig's current context gives the server, its CA (file or inline data, or
`insecure-skip-tls-verify`) and the user: a bearer token (inline or `tokenFile`) or a
client certificate and key (files or inline data). Exec and auth-provider plugins are
not run: use a token (a service account's) for driftwarden.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftwarden.domain.errors import DriftwardenError
from driftwarden.system.files import TEXT_FILE_LIMIT, UnusableFileError, read_text_capped

REQUEST_TIMEOUT_SECONDS = 15
PAGE_SIZE = 500


class KubeApiError(DriftwardenError):
    """The API server could not be asked, or refused: one line, no credential."""


@dataclass(frozen=True)
class ApiResource:
    """One resource of discovery: `clusterrolebindings` is kind ClusterRoleBinding of
    rbac.authorization.k8s.io/v1, cluster-scoped."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass
class KubeApi:
    """An API server, reached as a kubeconfig's current context says."""

    server: str
    context: ssl.SSLContext
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = REQUEST_TIMEOUT_SECONDS
    _resources: list[ApiResource] | None = None

    @classmethod
    def from_kubeconfig(cls, path: Path, timeout: float = REQUEST_TIMEOUT_SECONDS) -> KubeApi:
        import yaml

        try:
            config = yaml.safe_load(read_text_capped(path, TEXT_FILE_LIMIT)) or {}
        except UnusableFileError as exc:
            raise KubeApiError(f"kubeconfig {path} {exc}") from None
        except yaml.YAMLError:
            raise KubeApiError(f"kubeconfig {path} is not valid YAML") from None
        try:
            api = _from_config(config, path.parent)
            api.timeout = timeout
            return api
        except (KeyError, TypeError, ValueError, StopIteration) as exc:
            raise KubeApiError(
                f"kubeconfig {path}: its current context cannot be used ({type(exc).__name__})",
                hint="use a kubeconfig with a server, a CA and a token or client certificate",
            ) from None

    def get(self, path: str) -> Any:
        return json.loads(self._get(path))

    def audit_errors(self) -> dict[str, int]:
        """The API server's own count of audit events it failed to write, per backend
        (`apiserver_audit_error_total{plugin="log"}`): a source that loses events must not
        look complete. Needs `get` on the non-resource URL /metrics."""
        errors: dict[str, int] = {}
        for line in self._get("/metrics").decode("utf-8", "replace").splitlines():
            if line.startswith("apiserver_audit_error_total{"):
                labels, _, value = line.rpartition(" ")
                plugin = labels.partition('plugin="')[2].partition('"')[0] or "unknown"
                errors[plugin] = errors.get(plugin, 0) + int(float(value))
        return errors

    def _get(self, path: str) -> bytes:
        request = urllib.request.Request(self.server + path, headers=self.headers)
        try:
            with urllib.request.urlopen(
                request, context=self.context, timeout=self.timeout
            ) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise KubeApiError(f"the API server answered {exc.code} to GET {path}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise KubeApiError(
                f"the API server {self.server} cannot be reached: {reason}",
                hint="check that it runs and the kubeconfig's server and credentials",
            ) from None

    def resources(self) -> list[ApiResource]:
        """Discovery: every resource (no subresource) of every group's preferred version."""
        if self._resources is None:
            found = [_resource("", "v1", item) for item in self.get("/api/v1")["resources"]]
            for group in self.get("/apis").get("groups", []):
                preferred = group.get("preferredVersion") or group["versions"][0]
                listing = self.get(f"/apis/{preferred['groupVersion']}")
                found += [_resource(group["name"], preferred["version"], item)
                          for item in listing.get("resources", [])]  # fmt: skip
            self._resources = [r for r in found if "/" not in r.resource]
        return self._resources

    def resource_of(self, group: str, kind: str) -> ApiResource | None:
        return next((r for r in self.resources() if (r.group, r.kind) == (group, kind)), None)

    def list(self, resource: ApiResource, namespace: str | None = None) -> Iterator[Any]:
        """Every object of `resource` (in `namespace` when it is namespaced), page by page."""
        prefix = f"/apis/{resource.api_version}" if resource.group else "/api/v1"
        where = f"/namespaces/{namespace}" if namespace and resource.namespaced else ""
        token = ""
        while True:
            query = f"?limit={PAGE_SIZE}" + (f"&continue={token}" if token else "")
            page = self.get(f"{prefix}{where}/{resource.resource}{query}")
            yield from page.get("items", [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return


def _resource(group: str, version: str, item: Any) -> ApiResource:
    return ApiResource(group, version, str(item["name"]), str(item["kind"]),
                       bool(item.get("namespaced")))  # fmt: skip


def _from_config(config: Any, base: Path) -> KubeApi:
    contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
    current = contexts[config["current-context"]]
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == current["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == current["user"])
    context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=str(base / cluster["certificate-authority"]))
    headers = {"Accept": "application/json"}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = read_text_capped(base / user["tokenFile"]).strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    _load_client_pair(context, user, base)
    return KubeApi(str(cluster["server"]).rstrip("/"), context, headers)


def _load_client_pair(context: ssl.SSLContext, user: Any, base: Path) -> None:
    """The client certificate and key, from files or inline data (which `ssl` reads only
    from files: written to private ones for the load, and removed at once)."""
    paths: list[str] = []
    written: list[str] = []
    try:
        for name in ("client-certificate", "client-key"):
            if user.get(f"{name}-data"):
                handle, path = tempfile.mkstemp(prefix="driftwarden-kube-")
                written.append(path)
                with os.fdopen(handle, "wb") as out:
                    out.write(base64.b64decode(user[f"{name}-data"]))
                paths.append(path)
            elif user.get(name):
                paths.append(str(base / user[name]))
        if len(paths) == 2:
            context.load_cert_chain(paths[0], paths[1])
    finally:
        for path in written:
            os.unlink(path)
