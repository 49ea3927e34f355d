"""Investigations: evidence gathering, the hypothesis engines, and the workflow that runs them."""
