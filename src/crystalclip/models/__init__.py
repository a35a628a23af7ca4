"""Neural networks: crystal encoders (and, later, the text tower and the two-tower model)."""
from .cgcnn import CGCNN, CGCNNConfig

__all__ = ["CGCNN", "CGCNNConfig"]
