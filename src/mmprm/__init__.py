"""mmprm: process reward models for multimodal math reasoning."""

__version__ = "0.1.0"
