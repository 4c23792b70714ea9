"""spot-agent: runs on each managed EC2 instance and reports spot notices to the spot-optimizer operator.

It depends on the standard library and pydantic only.
"""

__version__ = "0.1.0"
