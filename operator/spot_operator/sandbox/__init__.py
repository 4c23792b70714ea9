"""The local sandbox: a Kubernetes API emulation and the pieces that run the operator against it."""
