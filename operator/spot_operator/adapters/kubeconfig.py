"""Where the cluster is and how to authenticate: in-cluster service account, else a kubeconfig file."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from spot_operator.adapters.kube import Connection

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(RuntimeError):
    pass


def in_cluster(root: Path = SERVICE_ACCOUNT) -> Connection | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = root / "token"
    if not host or not port or not token.exists():
        return None
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    ca = root / "ca.crt"
    return Connection(
        server=server, token=token.read_text().strip(), ca_path=str(ca) if ca.exists() else None
    )


def _named(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            found: dict[str, Any] = item.get(what) or {}
            return found
    raise KubeconfigError(f"kubeconfig has no {what} named {name!r}")


def kubeconfig_path(path: str | Path | None = None) -> Path:
    """``path``, else the first file of $KUBECONFIG, else ~/.kube/config (whether it exists or not)."""
    return Path(
        path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config"
    )


def _context(path: str | Path | None, context: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The kubeconfig document and its current (or named) context."""
    path = kubeconfig_path(path)
    if not path.exists():
        raise KubeconfigError(f"no kubeconfig at {path} and not running in a cluster")
    doc = yaml.safe_load(path.read_text()) or {}
    context = context or doc.get("current-context")
    if not context:
        raise KubeconfigError(f"{path}: no current-context")
    return doc, _named(doc.get("contexts", []), context, "context")


def from_kubeconfig(path: str | Path | None = None, context: str | None = None) -> Connection:
    """The connection of the current (or named) context. Token, client certificate and CA as files or data."""
    doc, ctx = _context(path, context)
    cluster = _named(doc.get("clusters", []), ctx.get("cluster", ""), "cluster")
    user = _named(doc.get("users", []), ctx.get("user", ""), "user") if ctx.get("user") else {}
    ca_data = cluster.get("certificate-authority-data")
    return Connection(
        server=str(cluster["server"]).rstrip("/"),
        token=user.get("token")
        or (Path(user["tokenFile"]).read_text().strip() if user.get("tokenFile") else None),
        ca_path=cluster.get("certificate-authority"),
        ca_data=base64.b64decode(ca_data) if ca_data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        certificate_path=user.get("client-certificate"),
        private_key_path=user.get("client-key"),
    )


def context_namespace(path: str | Path | None = None, context: str | None = None) -> str | None:
    """The namespace the current (or named) context selects, if it names one."""
    namespace = _context(path, context)[1].get("namespace")
    return str(namespace) if namespace else None


def in_cluster_namespace(root: Path = SERVICE_ACCOUNT) -> str | None:
    """The service account's namespace when running in a pod."""
    path = root / "namespace"
    return (path.read_text().strip() or None) if path.exists() else None


def load_connection() -> Connection:
    return in_cluster() or from_kubeconfig()
