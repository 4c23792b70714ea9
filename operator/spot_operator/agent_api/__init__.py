"""The agent API: where each instance's spot-agent reports heartbeats, notices and hook results.

The operator builds it with ``create_app(tokens, sink)`` and serves it with ``AgentApiServer`` on its
own loop; everything it learns goes to the ``AgentSink`` the operator provides.
"""

from spot_operator.agent_api.app import DEFAULT_MAX_BODY_BYTES, create_app
from spot_operator.agent_api.convert import to_heartbeat, to_notice
from spot_operator.agent_api.memory import InMemorySink
from spot_operator.agent_api.openapi import openapi_document
from spot_operator.agent_api.server import AgentApiServer
from spot_operator.agent_api.sink import AgentSink, NoticeOutcome
from spot_operator.agent_api.tokens import TokenStore, generate_token

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "AgentApiServer",
    "AgentSink",
    "InMemorySink",
    "NoticeOutcome",
    "TokenStore",
    "create_app",
    "generate_token",
    "openapi_document",
    "to_heartbeat",
    "to_notice",
]
