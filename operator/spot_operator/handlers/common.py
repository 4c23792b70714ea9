"""What every handler needs: the Operator from kopf's memo, and the resource names."""

from __future__ import annotations

from typing import Any

import kopf

from spot_operator.api.common import GROUP, VERSION
from spot_operator.runtime.operator import Operator

SPOTAGENTS = (GROUP, VERSION, "spotagents")
REPLICAS = (GROUP, VERSION, "replicas")
SWITCHREQUESTS = (GROUP, VERSION, "switchrequests")
TIMER_SECONDS = 60.0
TOKEN_KEY = "token"


def operator_of(memo: Any) -> Operator:
    op = getattr(memo, "operator", None)
    if not isinstance(op, Operator):
        raise kopf.PermanentError("the operator context is missing from kopf's memo (started outside main?)")
    return op


def token_secret_name(agent: str) -> str:
    return f"{agent}-spot-agent-token"
