"""Neural networks: the HardNet descriptor (L2Net body)."""

from .hardnet import HardNet

__all__ = ["HardNet"]
