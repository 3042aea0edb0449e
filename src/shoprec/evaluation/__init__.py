"""Metrics, protocols (leave-one-out, temporal, cold start) and reports."""
