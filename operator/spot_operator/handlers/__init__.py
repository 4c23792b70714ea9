"""kopf handlers: thin. Each kind has one level-based ``reconcile_<kind>()`` called on create, update,
resume and from a timer; the planner decides, the actuators act. Importing this package registers them."""

from spot_operator.handlers import lifecycle, replica, spotagent, switchrequest

__all__ = ["lifecycle", "replica", "spotagent", "switchrequest"]
