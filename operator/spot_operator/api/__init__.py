"""The custom resources (``spotoptimizer.io/v1alpha1``) as pydantic models: the single source of truth.

The CRD YAML in ``crds/`` is generated from these models by :mod:`spot_operator.api.crdgen`.
"""

from spot_operator.api.common import GROUP, VERSION, Condition, ConditionStatus
from spot_operator.api.replica import Replica, ReplicaPhase, ReplicaReason, ReplicaSpec, ReplicaStatus
from spot_operator.api.spotagent import (
    AgentSettings,
    Capacity,
    DataVolume,
    LaunchTemplateRef,
    Mode,
    Policy,
    RebalanceAction,
    SpotAgent,
    SpotAgentPhase,
    SpotAgentSpec,
    SpotAgentStatus,
    Termination,
    Traffic,
)
from spot_operator.api.switchrequest import (
    SwitchPhase,
    SwitchReason,
    SwitchRequest,
    SwitchRequestSpec,
    SwitchRequestStatus,
    SwitchTarget,
    TargetKind,
)

__all__ = [
    "GROUP",
    "VERSION",
    "AgentSettings",
    "Capacity",
    "Condition",
    "ConditionStatus",
    "DataVolume",
    "LaunchTemplateRef",
    "Mode",
    "Policy",
    "RebalanceAction",
    "Replica",
    "ReplicaPhase",
    "ReplicaReason",
    "ReplicaSpec",
    "ReplicaStatus",
    "SpotAgent",
    "SpotAgentPhase",
    "SpotAgentSpec",
    "SpotAgentStatus",
    "SwitchPhase",
    "SwitchReason",
    "SwitchRequest",
    "SwitchRequestSpec",
    "SwitchRequestStatus",
    "SwitchTarget",
    "TargetKind",
    "Termination",
    "Traffic",
]
