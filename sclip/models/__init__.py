"""Models: the dense CLIP backbone, attention variants and the SCLIP segmentor."""
from .attention import ATTENTIONS, AttentionInputs, get_attention, register_attention
from .backbone import CLIPDenseViT
from .data_preprocessor import SCLIPDataPreProcessor
from .segmentor import SCLIPSegmentor

__all__ = ['ATTENTIONS', 'AttentionInputs', 'get_attention', 'register_attention', 'CLIPDenseViT',
           'SCLIPDataPreProcessor', 'SCLIPSegmentor']
