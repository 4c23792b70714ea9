"""kopf's own activities: log in with the operator's connection, and settle kopf's settings."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from spot_operator.adapters.kube import Connection


@kopf.on.login(id="spot-optimizer-login")
def login(*, memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    connection: Connection = memo.connection
    return kopf.ConnectionInfo(
        server=connection.server,
        token=connection.token,
        scheme="Bearer" if connection.token else None,
        ca_path=connection.ca_path,
        ca_data=connection.ca_data,
        insecure=connection.insecure,
        certificate_path=connection.certificate_path,
        private_key_path=connection.private_key_path,
        default_namespace="default",
    )


@kopf.on.startup(id="spot-optimizer-settings")
def configure(*, settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.scanning.disabled = True  # explicit resources and namespaces: no CRD/namespace scans
    settings.peering.standalone = True  # our Lease decides who acts; kopf never runs on a standby
    settings.persistence.finalizer = "spotoptimizer.io/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="spotoptimizer.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="spotoptimizer.io")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
