"""Training-free methods as forward programs over CLIP's blocks (see base.py).

| name        | method                                   | module        |
|-------------|------------------------------------------|---------------|
| attention   | SCLIP, ClearCLIP, NACLIP, paper ablations | last_block.py |
| scclip      | SC-CLIP                                  | scclip.py     |
| resclip     | ResCLIP                                  | resclip.py    |
| proxyclip   | ProxyCLIP (with a foundation model)      | proxyclip.py  |
| gem         | GEM (self-self attention ensemble)       | gem.py        |
"""
from .base import METHODS, Method, TextSide, build_method, register_method
from .gem import GEM
from .last_block import LastBlockAttention
from .proxyclip import ProxyCLIP
from .resclip import ResCLIP
from .scclip import SCCLIP

__all__ = ['METHODS', 'Method', 'TextSide', 'build_method', 'register_method', 'GEM', 'LastBlockAttention',
           'ProxyCLIP', 'ResCLIP', 'SCCLIP']
