"""Operating the copilot: metrics, readiness, logs."""
