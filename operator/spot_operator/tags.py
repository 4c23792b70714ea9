"""The tags every instance we launch carries; observation and idempotency rely on them."""

OWNER = "spotoptimizer.io/owner"  # the SpotAgent's uid
AGENT = "spotoptimizer.io/agent"  # "<namespace>/<name>", for people
ROLE = "spotoptimizer.io/role"  # primary | replica | retiring
EPOCH = "spotoptimizer.io/epoch"  # primary generation
PURPOSE = "spotoptimizer.io/purpose"  # "replica/<name>" or "switch/<name>"
LAUNCH_KEY = "spotoptimizer.io/launch-key"  # the planner's step key
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "spot-optimizer"
