"""Metrics, reports and plots over scored candidates; step-error detection."""
