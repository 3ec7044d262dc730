"""GroupViT: its model in the official checkpoint layout and its official evaluation."""
from .checkpoint import load_groupvit  # noqa: F401
from .model import GroupViTArch, GroupViTModel  # noqa: F401
from .segmentor import GroupViTSegmentor  # noqa: F401
