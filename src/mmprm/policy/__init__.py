"""Policy backends: the Policy interface, prompts, local and served models."""
