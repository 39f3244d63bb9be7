"""Retention: the policy, a pure planner of tier moves and deletions, and their executor."""
