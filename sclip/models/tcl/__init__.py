"""TCL: its model in the official checkpoint layout and its official evaluation."""
from .checkpoint import load_tcl  # noqa: F401
from .model import TCLArch, TCLModel  # noqa: F401
from .segmentor import TCLSegmentor  # noqa: F401
