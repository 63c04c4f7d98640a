"""ptqtui: why a network lost accuracy after int8 post-training quantization, and what to change."""

__version__ = "0.1.0"
