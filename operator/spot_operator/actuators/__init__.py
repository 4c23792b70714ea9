"""Execute the planner's actions through the ports and record what they did in the AgentState."""

from spot_operator.actuators.actuator import ActionResult, Actuator, Ports

__all__ = ["ActionResult", "Actuator", "Ports"]
