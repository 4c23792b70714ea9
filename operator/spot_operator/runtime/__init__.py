"""The loop around the planner: observe from memory, plan, actuate, repeat until idle, write status."""
