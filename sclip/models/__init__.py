"""Models: CLIP's vision transformer as primitives (clip_vit), methods as forward programs over
it (methods/), attention variants (attention), the dense backbone and the segmentor."""
from .attention import ATTENTIONS, AttentionInputs, get_attention, register_attention
from .backbone import CLIPDenseViT
from .clip_vit import CLIPViT, Trunk
from .data_preprocessor import SCLIPDataPreProcessor
from .methods import METHODS, Method, build_method, register_method
from .segmentor import SCLIPSegmentor
from .groupvit import GroupViTSegmentor
from .tcl import TCLSegmentor
from .cliper_segmentor import CLIPerSegmentor

__all__ = ['ATTENTIONS', 'AttentionInputs', 'get_attention', 'register_attention', 'CLIPDenseViT', 'CLIPViT',
           'Trunk', 'SCLIPDataPreProcessor', 'METHODS', 'Method', 'build_method', 'register_method',
           'SCLIPSegmentor', 'GroupViTSegmentor', 'TCLSegmentor', 'CLIPerSegmentor']
