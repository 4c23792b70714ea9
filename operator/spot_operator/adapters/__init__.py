"""Implementations of the ports in :mod:`spot_operator.ports` over real services (AWS, Kubernetes, SQL)."""
