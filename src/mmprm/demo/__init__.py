"""The end-to-end demo: every stage on the synthetic set with the tiny models."""
