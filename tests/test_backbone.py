"""The dense ViT against open_clip's own forward and an independent last-block computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_clip
from sclip.errors import SCLIPError
from sclip.models.backbone import CLIPDenseViT, resize_positional_embedding


def official_pos_embed(pos, n_native, h, w, patch):
    """The official SCLIP interpolate_pos_encoding, transcribed."""
    class_pos_embed = pos[[0]]
    patch_pos_embed = pos[1:]
    dim = pos.shape[-1]
    w0, h0 = h // patch + 0.1, w // patch + 0.1
    patch_pos_embed = F.interpolate(
        patch_pos_embed.reshape(1, n_native, n_native, dim).permute(0, 3, 1, 2),
        scale_factor=(w0 / n_native, h0 / n_native), mode='bicubic')
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(-1, dim)
    return torch.cat((class_pos_embed, patch_pos_embed), dim=0)


def heads_attention(x, attn, kind):
    """Per head, with explicit weights and biases: the PROTOCOL's CSA (or CLIP's attention)."""
    n, c = x.shape
    heads = attn.num_heads
    d = c // heads
    w, b = attn.in_proj_weight, attn.in_proj_bias
    q, k, v = x @ w[:c].T + b[:c], x @ w[c:2 * c].T + b[c:2 * c], x @ w[2 * c:].T + b[2 * c:]
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        qh, kh, vh = q[:, sl], k[:, sl], v[:, sl]
        if kind == 'csa':
            a = torch.softmax(qh @ qh.T / math.sqrt(d), -1) + torch.softmax(kh @ kh.T / math.sqrt(d), -1)
        else:
            a = torch.softmax(qh @ kh.T / math.sqrt(d), -1)
        outs.append(a @ vh)
    return attn.out_proj(torch.cat(outs, dim=-1))


def reference_features(visual, image, kind='csa', residual=True, mlp=True):
    """An independent forward: open_clip blocks 1..L-1, then the modified last block."""
    x = visual.conv1(image)
    gh, gw = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(1, 1, -1), x], dim=1)
    n_native = visual.grid_size[0]
    pos = visual.positional_embedding if (gh, gw) == tuple(visual.grid_size) else \
        official_pos_embed(visual.positional_embedding, n_native, image.shape[-2], image.shape[-1],
                           visual.patch_size[0])
    x = visual.ln_pre(x + pos)
    for block in visual.transformer.resblocks[:-1]:
        x = block(x)
    last = visual.transformer.resblocks[-1]
    y = heads_attention(last.ln_1(x[0]), last.attn, kind)[None]
    x = x + y if residual else y
    if mlp:
        x = x + last.mlp(last.ln_2(x))
    return (visual.ln_post(x[:, 1:]) @ visual.proj).reshape(1, gh, gw, -1)


@pytest.fixture(scope='module')
def visual():
    return tiny_clip(layers=3).visual


def test_vanilla_equals_open_clip_tokens(visual):
    image = torch.randn(2, 3, 224, 224)
    backbone = CLIPDenseViT(visual, dict(type='vanilla'))
    visual.output_tokens = True
    _, tokens = visual(image)
    visual.output_tokens = False
    expected = (tokens @ visual.proj).reshape(2, 14, 14, -1)
    with torch.no_grad():
        assert torch.allclose(backbone(image), expected, atol=1e-4)


@pytest.mark.parametrize('size', [(224, 224), (224, 160), (100, 224)])
@pytest.mark.parametrize('fused', [True, False])
def test_csa_last_block_matches_protocol(visual, size, fused):
    image = torch.randn(1, 3, *size)
    backbone = CLIPDenseViT(visual, dict(type='csa'), fused=fused)
    with torch.no_grad():
        assert torch.allclose(backbone(image), reference_features(visual, image, 'csa'), atol=1e-4)


def test_positional_embedding_resize_matches_official(visual):
    pos = visual.positional_embedding.detach()
    for h, w in [(336, 448), (160, 224), (224, 96)]:
        ours = resize_positional_embedding(pos, (14, 14), (h // 16, w // 16))
        assert torch.allclose(ours, official_pos_embed(pos, 14, h, w, 16), atol=1e-6)


@pytest.mark.parametrize('residual,mlp', [(False, False), (False, True), (True, False)])
def test_last_block_structure_switches(visual, residual, mlp):
    image = torch.randn(1, 3, 224, 224)
    backbone = CLIPDenseViT(visual, dict(type='csa'), last_block_residual=residual, last_block_mlp=mlp)
    with torch.no_grad():
        assert torch.allclose(backbone(image), reference_features(visual, image, 'csa', residual, mlp),
                              atol=1e-4)


def test_multi_block_modification_changes_more_blocks(visual):
    image = torch.randn(1, 3, 224, 224)
    one = CLIPDenseViT(visual, dict(type='csa'), num_modified_blocks=1)
    two = CLIPDenseViT(visual, dict(type='csa'), num_modified_blocks=2)
    with torch.no_grad():
        x, grid = two.embed(image)
        blocks = visual.transformer.resblocks
        x = blocks[0](x)  # block 1 unchanged
        for block in blocks[1:]:
            y = heads_attention(block.ln_1(x[0]), block.attn, 'csa')[None]
            x = x + y
            x = x + block.mlp(block.ln_2(x))
        expected = (visual.ln_post(x[:, 1:]) @ visual.proj).reshape(1, 14, 14, -1)
        assert torch.allclose(two(image), expected, atol=1e-4)
        assert not torch.allclose(one(image), expected, atol=1e-3)
    with pytest.raises(SCLIPError, match='num_modified_blocks=9'):
        CLIPDenseViT(visual, dict(type='csa'), num_modified_blocks=9)


def test_early_layer_uses_the_attention_of_that_block(visual):
    image = torch.randn(1, 3, 224, 224)
    backbone = CLIPDenseViT(visual, dict(type='early_layer', layer=1))
    blocks = visual.transformer.resblocks
    with torch.no_grad():
        x, _ = backbone.embed(image)
        h = blocks[0].ln_1(x)
        c = h.shape[-1]
        w, b = blocks[0].attn.in_proj_weight, blocks[0].attn.in_proj_bias
        heads, d = blocks[0].attn.num_heads, c // blocks[0].attn.num_heads
        q = (h @ w[:c].T + b[:c]).view(1, -1, heads, d).transpose(1, 2)
        k = (h @ w[c:2 * c].T + b[c:2 * c]).view(1, -1, heads, d).transpose(1, 2)
        expected = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1)
        assert torch.allclose(backbone.attention_maps(image), expected, atol=1e-5)
    with pytest.raises(SCLIPError, match='layer=3 must name an unmodified block'):
        CLIPDenseViT(visual, dict(type='early_layer', layer=3))


@pytest.mark.parametrize('patch,image_size', [(14, 224), (16, 224), (32, 224), (14, 336)])
def test_every_patch_size(patch, image_size):
    visual = tiny_clip(patch_size=patch, image_size=image_size, layers=2).visual
    backbone = CLIPDenseViT(visual, dict(type='csa'))
    image = torch.randn(1, 3, image_size, image_size + patch * 2)
    with torch.no_grad():
        out = backbone(image)
        assert out.shape == (1, image_size // patch, image_size // patch + 2, 32)
        assert torch.allclose(out, reference_features(visual, image), atol=1e-4)
