"""boto3 clients per service and region, from one botocore session, with retries, timeouts and call counting.

Every client carries three botocore event handlers:

- ``before-call``: counts the call in ``spot_optimizer_aws_calls_total{service, operation}`` (one per API
  call, whatever the retries) and hands ``<iam prefix>:<Operation>`` to an optional :class:`CallRecorder`;
- ``after-call`` / ``after-call-error``: count failures in ``spot_optimizer_aws_errors_total`` by code
  (the exception's class name when no response came back);
- ``needs-retry`` on ``ec2.RunInstances``: EC2 answers capacity errors with HTTP 500, which botocore's
  retry modes treat as transient. Retrying the same pool for seconds only delays trying the next
  candidate, so the retry is refused for those codes and the adapter moves on at once.

The service label is the signing name (``elasticloadbalancing`` for ELBv2), which is also the IAM action
prefix, so recorded operations compare directly with the IAM policy.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from spot_operator import metrics
from spot_operator.adapters.aws.errors import CAPACITY_CODES

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_pricing import PricingClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_sqs import SQSClient

# The Price List API answers in a few regions only; us-east-1 is the one every partition-aws account reaches.
PRICING_REGION = "us-east-1"
# Route 53 is global; its endpoint signs in us-east-1.
ROUTE53_REGION = "us-east-1"
_CONTEXT_KEY = "spot_operator_call"


@dataclass(frozen=True)
class AwsConfig:
    """How clients reach AWS. ``endpoint_url`` overrides every service (a moto server in tests)."""

    endpoint_url: str | None = None
    max_attempts: int = 5  # in all, the first try included (botocore's total_max_attempts)
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_pool_connections: int = 50
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None

    @classmethod
    def from_env(cls, endpoint_url: str | None = None) -> AwsConfig:
        """Credentials come from boto3's default chain (IRSA, env, profile); only the endpoint is read."""
        return cls(endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None)

    def botocore_config(self, read_timeout: float | None = None) -> Config:
        return Config(
            retries={"mode": "adaptive", "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=read_timeout or self.read_timeout,
            max_pool_connections=self.max_pool_connections,
        )


class CallRecorder:
    """Thread-safe tally of ``<iam prefix>:<Operation>`` for every call made (read by the IAM test)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def record(self, action: str) -> None:
        with self._lock:
            self.calls[action] += 1

    @property
    def actions(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self.calls)

    def total(self, prefix: str = "") -> int:
        with self._lock:
            return sum(n for action, n in self.calls.items() if action.startswith(prefix))

    def count(self, action: str) -> int:
        with self._lock:
            return self.calls[action]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


class _Hooks:
    def __init__(self, recorders: list[CallRecorder]) -> None:
        self.recorders = recorders

    def before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.signing_name or model.service_model.endpoint_prefix
        context[_CONTEXT_KEY] = (service, model.name)
        metrics.AWS_CALLS.labels(service, model.name).inc()
        for recorder in self.recorders:
            recorder.record(f"{service}:{model.name}")

    def after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if http_response.status_code < 300:
            return
        service, operation = context.get(_CONTEXT_KEY, (model.service_model.signing_name, model.name))
        code = str(parsed.get("Error", {}).get("Code") or http_response.status_code)
        metrics.AWS_ERRORS.labels(service, operation, code).inc()

    def after_call_error(
        self, exception: BaseException, context: dict[str, Any], event_name: str, **_: Any
    ) -> None:
        fallback = tuple(event_name.split(".", 2)[1:]) or ("unknown", "unknown")
        service, operation = context.get(_CONTEXT_KEY, fallback)
        metrics.AWS_ERRORS.labels(service, operation, type(exception).__name__).inc()

    @staticmethod
    def refuse_capacity_retry(response: Any, **_: Any) -> bool | None:
        """False (do not retry) for a capacity error; None lets the retry handler decide."""
        if response is None:
            return None
        _http, parsed = response
        code = parsed.get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        return False if code in CAPACITY_CODES else None


class AwsClients:
    """Creates each (service, region) client once; boto3 clients are thread-safe once created."""

    def __init__(self, config: AwsConfig | None = None, recorder: CallRecorder | None = None) -> None:
        self.config = config or AwsConfig.from_env()
        self._hooks = _Hooks([recorder] if recorder is not None else [])
        self._session = boto3.session.Session(
            aws_access_key_id=self.config.aws_access_key_id,
            aws_secret_access_key=self.config.aws_secret_access_key,
            aws_session_token=self.config.aws_session_token,
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def add_recorder(self, recorder: CallRecorder) -> None:
        self._hooks.recorders.append(recorder)

    def _client(self, service: str, region: str, read_timeout: float | None = None) -> Any:
        key = (service, region)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:  # botocore sessions are not thread-safe while creating clients
            client = self._clients.get(key)
            if client is None:
                client = self._session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=self.config.endpoint_url,
                    config=self.config.botocore_config(read_timeout),
                )
                events = client.meta.events
                events.register("before-call", self._hooks.before_call)
                events.register("after-call", self._hooks.after_call)
                events.register("after-call-error", self._hooks.after_call_error)
                if service == "ec2":
                    events.register_first("needs-retry.ec2.RunInstances", self._hooks.refuse_capacity_retry)
                self._clients[key] = client
        return client

    def ec2(self, region: str) -> EC2Client:
        client: EC2Client = self._client("ec2", region)
        return client

    def elbv2(self, region: str) -> ElasticLoadBalancingv2Client:
        client: ElasticLoadBalancingv2Client = self._client("elbv2", region)
        return client

    def route53(self) -> Route53Client:
        client: Route53Client = self._client("route53", ROUTE53_REGION)
        return client

    def pricing(self) -> PricingClient:
        client: PricingClient = self._client("pricing", PRICING_REGION)
        return client

    def sqs(self, region: str, long_poll_seconds: int = 20) -> SQSClient:
        # A long poll holds the connection open: the read timeout must outlast it.
        timeout = max(self.config.read_timeout, long_poll_seconds + 10.0)
        client: SQSClient = self._client("sqs", region, read_timeout=timeout)
        return client

    def events(self, region: str) -> EventBridgeClient:
        client: EventBridgeClient = self._client("events", region)
        return client
