"""Training-free methods as forward programs over CLIP's blocks (see base.py).

| name        | method                                   | module        |
|-------------|------------------------------------------|---------------|
| attention   | SCLIP, ClearCLIP, NACLIP, paper ablations | last_block.py |
| scclip      | SC-CLIP                                  | scclip.py     |
| resclip     | ResCLIP                                  | resclip.py    |
| proxyclip   | ProxyCLIP (with a foundation model)      | proxyclip.py  |
| gem         | GEM (self-self attention ensemble)       | gem.py        |
| fsa         | FSA, plugged into ProxyCLIP              | fsa.py        |
| corrclip    | CorrCLIP (DINO + region masks)           | corrclip.py   |
| cass        | CASS (DINO's spectral attention graph)   | cass.py       |
| sfp         | SFP                                      | sfp.py        |
| itaclip     | ITACLIP (intermediate attention, views)  | itaclip.py    |
| trident     | Trident (spliced windows, SAM aggregation) | trident.py  |
| freecp      | FreeCP, plugged into a base method       | freecp.py     |
| segearth_ov | SegEarth-OV ([CLS] bias, SimFeatUp)      | segearth_ov.py |

FLOSS is no forward program but a text-side plug-in over any of them (floss.py).
"""
from .base import METHODS, Method, TextSide, build_method, register_method
from .freecp import FreeCP
from .corrclip import CorrCLIP
from .cass import CASS
from .fsa import FSA
from .gem import GEM
from .itaclip import ITACLIP
from .last_block import LastBlockAttention
from .proxyclip import ProxyCLIP
from .resclip import ResCLIP
from .scclip import SCCLIP
from .segearth_ov import SegEarthOV
from .sfp import SFP
from .trident import Trident

__all__ = ['METHODS', 'Method', 'TextSide', 'build_method', 'register_method', 'CASS', 'CorrCLIP', 'FreeCP', 'FSA', 'GEM',
           'ITACLIP', 'LastBlockAttention', 'ProxyCLIP', 'ResCLIP', 'SCCLIP', 'SegEarthOV', 'SFP', 'Trident']
