"""spot-optimizer: a Kubernetes operator that keeps EC2 workloads on the cheapest safe Spot capacity."""

__version__ = "0.1.0"
