"""Every Prometheus metric the operator exports, in one place: ``spot_optimizer_<subsystem>_<name>_<unit>``.

Actuators, adapters and background tasks record them; the planner never does.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

SWITCHES = Counter(
    "spot_optimizer_switch_total",
    "Switches of a primary that ended, by reason and result.",
    ["reason", "result"],
    registry=REGISTRY,
)
FAILOVER_SECONDS = Histogram(
    "spot_optimizer_failover_duration_seconds",
    "From the notice arriving to the new primary serving.",
    ["path"],  # replica | replacement
    buckets=_FAST,
    registry=REGISTRY,
)
NOTICES = Counter(
    "spot_optimizer_notice_received_total",
    "Interruption, rebalance and maintenance notices, by type and source (agent, sqs).",
    ["type", "source", "duplicate"],
    registry=REGISTRY,
)
SAVINGS_HOURLY = Gauge(
    "spot_optimizer_savings_hourly_usd",
    "What the agent's primary saves per hour against on-demand.",
    ["namespace", "agent"],
    registry=REGISTRY,
)
SAVINGS_TO_DATE = Gauge(
    "spot_optimizer_savings_to_date_usd",
    "What the agent has saved since it was created.",
    ["namespace", "agent"],
    registry=REGISTRY,
)
POOL_PRICE = Gauge(
    "spot_optimizer_price_pool_usd",
    "Latest spot price per pool (USD per hour).",
    ["pool"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "spot_optimizer_reconcile_duration_seconds",
    "Wall time of one reconcile of one object.",
    ["kind"],
    buckets=_FAST,
    registry=REGISTRY,
)
ACTION_SECONDS = Histogram(
    "spot_optimizer_action_duration_seconds",
    "Wall time of one actuated action, by action and result.",
    ["action", "result"],
    buckets=_FAST,
    registry=REGISTRY,
)
TRAFFIC_MOVE_SECONDS = Histogram(
    "spot_optimizer_traffic_move_duration_seconds",
    "Time to move one part of the traffic (elastic-ip, target-groups, dns).",
    ["part"],
    buckets=_FAST,
    registry=REGISTRY,
)
AWS_CALLS = Counter(
    "spot_optimizer_aws_calls_total",
    "AWS API calls made, by service and operation.",
    ["service", "operation"],
    registry=REGISTRY,
)
AWS_ERRORS = Counter(
    "spot_optimizer_aws_errors_total",
    "AWS API calls that failed, by service, operation and error code.",
    ["service", "operation", "code"],
    registry=REGISTRY,
)
INTERPOLATED_SHARE = Gauge(
    "spot_optimizer_prices_interpolated_ratio",
    "Share of clean price points that were filled rather than measured.",
    registry=REGISTRY,
)
MODEL_INFO = Info(
    "spot_optimizer_model_active",
    "The scorer in use: name and version.",
    registry=REGISTRY,
)
MODEL_FALLBACKS = Counter(
    "spot_optimizer_model_fallback_total",
    "Times a scorer failed, was slow, or would not load, and the next one answered.",
    ["model", "reason"],
    registry=REGISTRY,
)
AGENTS = Gauge(
    "spot_optimizer_agents",
    "SpotAgents by phase.",
    ["phase"],
    registry=REGISTRY,
)
DB_BUFFERED_ROWS = Gauge(
    "spot_optimizer_store_buffered_rows",
    "Rows waiting for the database to come back.",
    registry=REGISTRY,
)
