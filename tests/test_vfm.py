"""The VFMs of ProxyCLIP (sclip/models/vfm) against transcriptions of the official code.

Every type is built tiny and random, loaded from a checkpoint in its official file layout
and compared, features for features, with a reference forward written here from the
official source, through ProxyCLIP's own input preparation:

* DINO: facebookresearch/dino vision_transformer.py (prepare_tokens,
  interpolate_pos_encoding, Block, Attention, get_intermediate_layers);
* DINOv2: facebookresearch/dinov2 (prepare_tokens_with_masks, interpolate_pos_encoding with
  the hub's offset/antialias, NestedTensorBlock with LayerScale, the explicit Attention,
  get_intermediate_layers(reshape=True));
* MAE: ProxyCLIP's mae/pos_embed.py interpolate_pos_embed at load and mae/models_vit.py
  forward_features over timm 0.4.12's Block and Attention;
* SAM: the segment_anything package itself;
* input: ProxyCLIP forward_feature's ``self.norm(self.unnorm(img[i]))`` and resizes.

Inputs are non-square, with patch grids that differ from the checkpoints' (the DINO and
DINOv2 grids are taken per axis; ProxyCLIP itself computes I = J = H // p, so it only
runs square crops).
"""
import math
import os
import urllib.error

import pytest
import torch
import torch.nn.functional as F
from torchvision import transforms

from sclip.errors import SCLIPError
from sclip.models.vfm import SPECS, VFM_TYPES, build_vfm, get_spec, proxy_input
from sclip.models.vfm import checkpoint as vfm_checkpoint
from sclip.models.vfm.testing import official_checkpoint, write_official_checkpoint

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# ---------------------------------------------------------------- official input (ProxyCLIP)

def official_vfm_input(img, family, crop, sam_size):
    """forward_feature: UnNormalize (myutils) + torchvision Normalize, per image; SAM/MAE resize."""
    def unnorm(image):
        image2 = torch.clone(image)
        for t, m, s in zip(image2, CLIP_MEAN, CLIP_STD):
            t.mul_(s).add_(m)
        return image2
    norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    imgs_norm = torch.stack([norm(unnorm(img[i])) for i in range(len(img))], dim=0)
    if family == 'sam':
        imgs_norm = F.interpolate(imgs_norm, size=(sam_size, sam_size), mode='bilinear', align_corners=False)
    elif family == 'mae':
        imgs_norm = F.interpolate(imgs_norm, size=(crop, crop), mode='bilinear', align_corners=False)
    return imgs_norm


# ---------------------------------------------------------------- reference forwards

def layer_norm(x, sd, name):
    return F.layer_norm(x, x.shape[-1:], sd[name + '.weight'], sd[name + '.bias'], eps=1e-6)


def linear(x, sd, name):
    return F.linear(x, sd[name + '.weight'], sd[name + '.bias'])


def mlp(x, sd, name):
    return linear(F.gelu(linear(x, sd, name + '.fc1')), sd, name + '.fc2')


def dino_attention(x, sd, name, num_heads):
    """DINO's Attention.forward (also timm 0.4.12's): (q @ k^T) * scale."""
    B, N, C = x.shape
    qkv = linear(x, sd, name + '.qkv').reshape(B, N, 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scale = (C // num_heads) ** -0.5
    attn = (q @ k.transpose(-2, -1)) * scale
    attn = attn.softmax(dim=-1)
    x = (attn @ v).transpose(1, 2).reshape(B, N, C)
    return linear(x, sd, name + '.proj')


def dinov2_attention(x, sd, name, num_heads):
    """DINOv2's explicit Attention.forward: q * scale, then q @ k^T."""
    B, N, C = x.shape
    qkv = linear(x, sd, name + '.qkv').reshape(B, N, 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (C // num_heads) ** -0.5, qkv[1], qkv[2]
    attn = q @ k.transpose(-2, -1)
    attn = attn.softmax(dim=-1)
    x = (attn @ v).transpose(1, 2).reshape(B, N, C)
    return linear(x, sd, name + '.proj')


def depth_of(sd):
    return len({key.split('.')[1] for key in sd if key.startswith('blocks.')})


def dino_reference(sd, x, patch, num_heads):
    """DINO get_intermediate_layers(x)[0][:, 1:] as (B, C, I, J)."""
    B, nc, w, h = x.shape
    t = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=patch)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat((sd['cls_token'].expand(B, -1, -1), t), dim=1)
    # interpolate_pos_encoding(x, w, h)
    pos_embed = sd['pos_embed']
    npatch = t.shape[1] - 1
    N = pos_embed.shape[1] - 1
    if npatch == N and w == h:
        pos = pos_embed
    else:
        class_pos_embed = pos_embed[:, 0]
        patch_pos_embed = pos_embed[:, 1:]
        dim = t.shape[-1]
        w0 = w // patch
        h0 = h // patch
        w0, h0 = w0 + 0.1, h0 + 0.1
        patch_pos_embed = F.interpolate(
            patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
            scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode='bicubic')
        assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        pos = torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)
    t = t + pos
    for i in range(depth_of(sd)):
        b = f'blocks.{i}'
        t = t + dino_attention(layer_norm(t, sd, b + '.norm1'), sd, b + '.attn', num_heads)
        t = t + mlp(layer_norm(t, sd, b + '.norm2'), sd, b + '.mlp')
    feat = layer_norm(t, sd, 'norm')
    return feat[:, 1:, :].reshape(B, w // patch, h // patch, -1).permute(0, 3, 1, 2)


def dinov2_reference(sd, x, patch, num_heads, offset, antialias):
    """DINOv2 get_intermediate_layers(x, reshape=True)[0]."""
    B, nc, w, h = x.shape
    t = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=patch)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat((sd['cls_token'].expand(t.shape[0], -1, -1), t), dim=1)
    # interpolate_pos_encoding(x, w, h)
    previous_dtype = t.dtype
    npatch = t.shape[1] - 1
    N = sd['pos_embed'].shape[1] - 1
    if npatch == N and w == h:
        pos = sd['pos_embed']
    else:
        pos_embed = sd['pos_embed'].float()
        class_pos_embed = pos_embed[:, 0]
        patch_pos_embed = pos_embed[:, 1:]
        dim = t.shape[-1]
        w0 = w // patch
        h0 = h // patch
        M = int(math.sqrt(N))
        assert N == M * M
        kwargs = {}
        if offset:
            sx = float(w0 + offset) / M
            sy = float(h0 + offset) / M
            kwargs['scale_factor'] = (sx, sy)
        else:
            kwargs['size'] = (w0, h0)
        patch_pos_embed = F.interpolate(patch_pos_embed.reshape(1, M, M, dim).permute(0, 3, 1, 2),
                                        mode='bicubic', antialias=antialias, **kwargs)
        assert (w0, h0) == patch_pos_embed.shape[-2:]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        pos = torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1).to(previous_dtype)
    t = t + pos
    registers = sd['register_tokens'].shape[1] if 'register_tokens' in sd else 0
    if registers:
        t = torch.cat((t[:, :1], sd['register_tokens'].expand(t.shape[0], -1, -1), t[:, 1:]), dim=1)
    for i in range(depth_of(sd)):
        b = f'blocks.{i}'
        t = t + dinov2_attention(layer_norm(t, sd, b + '.norm1'), sd, b + '.attn', num_heads) * sd[b + '.ls1.gamma']
        t = t + mlp(layer_norm(t, sd, b + '.norm2'), sd, b + '.mlp') * sd[b + '.ls2.gamma']
    out = layer_norm(t, sd, 'norm')[:, 1 + registers:]
    return out.reshape(B, w // patch, h // patch, -1).permute(0, 3, 1, 2).contiguous()


def mae_load(checkpoint_model, patch, slide_crop):
    """The state dict of models_vit.vit_*(img_size=slide_crop) after interpolate_pos_embed."""
    checkpoint_model = dict(checkpoint_model)
    pos_embed_checkpoint = checkpoint_model['pos_embed']
    embedding_size = pos_embed_checkpoint.shape[-1]
    num_patches = (slide_crop // patch) ** 2
    num_extra_tokens = 1
    orig_size = int((pos_embed_checkpoint.shape[-2] - num_extra_tokens) ** 0.5)
    new_size = int(num_patches ** 0.5)
    if orig_size != new_size:
        extra_tokens = pos_embed_checkpoint[:, :num_extra_tokens]
        pos_tokens = pos_embed_checkpoint[:, num_extra_tokens:]
        pos_tokens = pos_tokens.reshape(-1, orig_size, orig_size, embedding_size).permute(0, 3, 1, 2)
        pos_tokens = F.interpolate(pos_tokens, size=(new_size, new_size), mode='bicubic', align_corners=False)
        pos_tokens = pos_tokens.permute(0, 2, 3, 1).flatten(1, 2)
        checkpoint_model['pos_embed'] = torch.cat((extra_tokens, pos_tokens), dim=1)
    return checkpoint_model


def mae_reference(sd, x, patch, num_heads):
    """models_vit.VisionTransformer.forward_features (timm 0.4.12 blocks), as (B, C, I, J)."""
    B = x.shape[0]
    t = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=patch)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat((sd['cls_token'].expand(B, -1, -1), t), dim=1)
    t = t + sd['pos_embed']
    for i in range(depth_of(sd)):
        b = f'blocks.{i}'
        t = t + dino_attention(layer_norm(t, sd, b + '.norm1'), sd, b + '.attn', num_heads)
        t = t + mlp(layer_norm(t, sd, b + '.norm2'), sd, b + '.mlp')
    outcome = layer_norm(t[:, 1:], sd, 'norm')
    I = J = x.shape[-2] // patch
    return outcome.reshape(B, I, J, -1).permute(0, 3, 1, 2)  # rearrange 'b (h w) c -> b c h w'


def sam_reference(path, spec, x, dtype=torch.float32):
    """segment_anything: the encoder _build_sam makes, loaded from the full SAM state dict."""
    from functools import partial
    from segment_anything.modeling import ImageEncoderViT
    encoder = ImageEncoderViT(depth=spec.depth, embed_dim=spec.width, img_size=spec.image_size, mlp_ratio=4,
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=spec.heads,
                              patch_size=spec.patch_size, qkv_bias=True, use_rel_pos=True,
                              global_attn_indexes=list(spec.global_attn_indexes),
                              window_size=spec.window_size, out_chans=spec.out_chans)
    with open(path, 'rb') as f:
        state_dict = torch.load(f)
    encoder.load_state_dict({k[len('image_encoder.'):]: v for k, v in state_dict.items()
                             if k.startswith('image_encoder.')})
    return encoder.eval().to(dtype)(x)


def reference_features(vfm_type, path, images, crop):
    spec = get_spec(vfm_type, tiny=True)
    x = official_vfm_input(images, spec.family, crop, spec.image_size)
    contents = torch.load(path, weights_only=True)
    if spec.family == 'dino':
        return dino_reference(contents, x, spec.patch_size, spec.heads)
    if spec.family == 'dinov2':
        return dinov2_reference(contents, x, spec.patch_size, spec.heads, spec.pos_offset, spec.pos_antialias)
    if spec.family == 'mae':
        return mae_reference(mae_load(contents['model'], spec.patch_size, crop), x, spec.patch_size, spec.heads)
    return sam_reference(path, spec, x)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Tiny random checkpoints of every type, each in its official layout."""
    folder = tmp_path_factory.mktemp('vfm')
    return {t: write_official_checkpoint(str(folder / f'{t}.pth'), t, seed=i) for i, t in enumerate(VFM_TYPES)}


def clip_crops(height, width, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, height, width, generator=generator)


# ---------------------------------------------------------------- (a) official features

CASES = [  # type, crop height, crop width, slide_crop
    ('dino_vitb8', 336, 224, 336),      # 42x28 from 28x28
    ('dino_vitb8', 224, 224, 224),      # native: embedding used as it is
    ('dino_vits8', 120, 200, 336),
    ('dino_vits16', 230, 224, 336),     # 14x14 grid, but non-square pixels: resampled by 14.1/14
    ('dino_vitb16', 160, 208, 336),
    ('dinov2_vitb14_reg', 336, 224, 336),   # 24x16 from 37x37, size + antialias
    ('dinov2_vitb14_reg', 518, 518, 518),   # native
    ('dinov2_vits14_reg', 560, 532, 336),   # 40x38, upsampled
    ('dinov2_vits14', 336, 224, 336),       # scale factor (n + 0.1) / 37
    ('dinov2_vitb14', 280, 434, 336),
    ('dinov2_vitl14_reg', 224, 336, 336),
    ('sam_vit_b', 200, 300, 336),       # resized to SAM's (tiny: 224) square input
    ('sam_vit_l', 336, 336, 336),
    ('sam_vit_h', 224, 224, 336),
    ('mae_vit_b16', 300, 260, 336),     # resized to 336x336: 21x21 from 14x14
    ('mae_vit_b16', 224, 224, 224),     # native
    ('mae_vit_l16', 336, 336, 448),
    ('mae_vit_h14', 336, 336, 336),
]


@pytest.mark.parametrize('vfm_type,height,width,crop', CASES)
def test_features_equal_the_official_code(checkpoints, vfm_type, height, width, crop):
    images = clip_crops(height, width, batch=2 if height * width <= 336 * 224 else 1)
    expected = reference_features(vfm_type, checkpoints[vfm_type], images, crop)
    vfm = build_vfm(vfm_type, checkpoints[vfm_type], tiny=True)
    with torch.no_grad():
        got = vfm(proxy_input(images, vfm, crop))
    assert got.shape == expected.shape
    assert got.shape[1] == vfm.embed_dim
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert expected.std() > 0.5  # features are not degenerate


def test_the_positional_resize_policy_is_visible(checkpoints):
    """The 1e-5 comparison would catch a wrong policy: DINOv2's plain-model resize
    (scale factor (n + 0.1) / M, no antialias) instead of the *_reg models' differs a lot."""
    sd = torch.load(checkpoints['dinov2_vitb14_reg'], weights_only=True)
    x = official_vfm_input(clip_crops(336, 224), 'dinov2', 336, 0)
    reg_policy = dinov2_reference(sd, x, 14, 2, 0.0, True)
    plain_policy = dinov2_reference(sd, x, 14, 2, 0.1, False)
    assert (reg_policy - plain_policy).abs().max() > 1e-2


def test_dino_training_checkpoint_layout_loads_the_teacher(tmp_path, checkpoints):
    full = write_official_checkpoint(str(tmp_path / 'full.pth'), 'dino_vitb8', seed=VFM_TYPES.index('dino_vitb8'),
                                     training_checkpoint=True)
    images = proxy_input(clip_crops(64, 48), build_vfm('dino_vitb8', None, download=False, tiny=True), 64)
    with torch.no_grad():
        from_backbone = build_vfm('dino_vitb8', checkpoints['dino_vitb8'], tiny=True)(images)
        from_training = build_vfm('dino_vitb8', full, tiny=True)(images)
    torch.testing.assert_close(from_training, from_backbone, atol=0, rtol=0)


def test_mae_resizes_from_the_float32_checkpoint_after_a_half_cast(checkpoints):
    """Official MAE resizes the float32 embedding at load, then .half(): so do we."""
    vfm = build_vfm('mae_vit_b16', checkpoints['mae_vit_b16'], tiny=True)
    sd = torch.load(checkpoints['mae_vit_b16'], weights_only=True)['model']
    vfm.half()
    tokens = torch.zeros(1, 1 + 21 * 21, 64, dtype=torch.half)
    got = vfm.positional_embedding(tokens, (21, 21), (336, 336))
    pos = sd['pos_embed'][:, 1:].reshape(1, 14, 14, 64).permute(0, 3, 1, 2)
    pos = F.interpolate(pos, size=(21, 21), mode='bicubic', align_corners=False).permute(0, 2, 3, 1).flatten(1, 2)
    expected = torch.cat((sd['pos_embed'][:, :1], pos), dim=1).half()
    assert got.dtype == torch.half and torch.equal(got, expected)


def test_full_size_sam_encoder_matches_segment_anything():
    from segment_anything import sam_model_registry
    official = sam_model_registry['vit_b']().image_encoder.state_dict()
    ours = build_vfm('sam_vit_b', None, download=False).encoder.state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in official.items()}


# ---------------------------------------------------------------- (b) fused attention

@pytest.mark.parametrize('vfm_type,height,width', [('dino_vitb8', 336, 224), ('dinov2_vitb14_reg', 336, 224),
                                                   ('mae_vit_b16', 336, 336), ('sam_vit_b', 224, 224)])
def test_fused_attention_equals_explicit(checkpoints, vfm_type, height, width):
    vfm = build_vfm(vfm_type, checkpoints[vfm_type], tiny=True)
    images = proxy_input(clip_crops(height, width), vfm, height)
    with torch.no_grad():
        explicit = vfm(images)
        vfm.fused = True
        fused = vfm(images)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert not torch.equal(fused, explicit)  # really two code paths


# ---------------------------------------------------------------- input preparation

@pytest.mark.parametrize('vfm_type,crop,size', [('dino_vitb8', 336, (200, 264)), ('dinov2_vitb14_reg', 336, (200, 264)),
                                                ('mae_vit_b16', 336, (336, 336)), ('sam_vit_b', 336, (1024, 1024))])
def test_proxy_input_is_proxyclips_arithmetic(vfm_type, crop, size):
    vfm = build_vfm(vfm_type, None, download=False, tiny=vfm_type != 'sam_vit_b',
                    config_overrides=dict(width=32, depth=1, heads=1) if vfm_type == 'sam_vit_b' else None)
    images = clip_crops(200, 264)
    got = proxy_input(images, vfm, crop)
    family = vfm.spec.family
    assert torch.equal(got, official_vfm_input(images, family, crop, 1024))
    assert tuple(got.shape[-2:]) == size
    half = proxy_input(images, vfm, crop, dtype=torch.half)  # ProxyCLIP: .half() before the resize
    expected = official_vfm_input(images, 'none', crop, 0).half()
    if family in ('sam', 'mae'):
        expected = F.interpolate(expected, size=size, mode='bilinear', align_corners=False)
    assert half.dtype == torch.half and torch.equal(half, expected)


def test_sam_refuses_an_unresized_input():
    vfm = build_vfm('sam_vit_b', None, download=False, tiny=True)
    with pytest.raises(ValueError, match='proxy_input'):
        vfm(torch.zeros(1, 3, 200, 200))


# ---------------------------------------------------------------- (c) one-line errors

def one_line_error(call):
    with pytest.raises(SCLIPError) as info:
        call()
    message = str(info.value)
    assert '\n' not in message
    return message


def test_missing_and_unreadable_files(tmp_path):
    missing = str(tmp_path / 'nowhere.pth')
    message = one_line_error(lambda: build_vfm('dino_vitb8', missing))
    assert missing in message and 'does not exist' in message and 'dino_vitbase8_pretrain.pth' in message

    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'this is not a checkpoint')
    message = one_line_error(lambda: build_vfm('dinov2_vitb14_reg', str(garbage)))
    assert str(garbage) in message and 'could not be read' in message and 'dinov2_vitb14_reg4_pretrain.pth' in message

    unsafe = str(tmp_path / 'unsafe.pth')
    torch.save({'model': transforms.Normalize([0.5], [0.5])}, unsafe)  # pickled code: refused
    assert 'could not be read' in one_line_error(lambda: build_vfm('mae_vit_b16', unsafe))

    not_tensors = str(tmp_path / 'numbers.pth')
    torch.save({'epoch': 3, 'lr': 0.1}, not_tensors)
    assert 'not a state dict of tensors' in one_line_error(lambda: build_vfm('sam_vit_b', not_tensors))


def test_a_checkpoint_of_another_model_is_named(tmp_path):
    small16 = write_official_checkpoint(str(tmp_path / 's16.pth'), 'dino_vits16', tiny=False,
                                        config_overrides=dict(depth=1))
    message = one_line_error(lambda: build_vfm('dino_vitb8', small16))
    assert small16 in message
    assert 'looks like a dino_vits16 checkpoint (patch 16, width 384' in message
    assert 'model.vfm.type is dino_vitb8 (patch 8, width 768' in message

    dinov2_small = write_official_checkpoint(str(tmp_path / 'v2s.pth'), 'dinov2_vits14_reg', tiny=False,
                                             config_overrides=dict(depth=1))
    assert 'looks like a dinov2_vits14_reg checkpoint' in one_line_error(lambda: build_vfm('dino_vitb16', dinov2_small))
    message = one_line_error(lambda: build_vfm('dinov2_vitb14', dinov2_small))
    assert 'looks like a dinov2_vits14_reg checkpoint (patch 14, width 384, 4 registers' in message

    mae_large = write_official_checkpoint(str(tmp_path / 'mae_l.pth'), 'mae_vit_l16', tiny=False,
                                          config_overrides=dict(depth=1))
    assert 'looks like a mae_vit_l16 checkpoint' in one_line_error(lambda: build_vfm('dino_vitb8', mae_large))


def test_tiny_shape_and_key_mismatches(tmp_path, checkpoints):
    assert 'is a SAM ViT checkpoint (patch 16, width 64)' in one_line_error(
        lambda: build_vfm('mae_vit_b16', checkpoints['sam_vit_b'], tiny=True))
    assert 'depth 2' in one_line_error(
        lambda: build_vfm('dino_vitb8', checkpoints['dino_vitb8'], tiny=True, config_overrides=dict(depth=3)))

    state = official_checkpoint('dinov2_vitb14', seed=1)
    del state['blocks.1.mlp.fc2.bias']
    path = str(tmp_path / 'missing_key.pth')
    torch.save(state, path)
    message = one_line_error(lambda: build_vfm('dinov2_vitb14', path, tiny=True))
    assert path in message and 'missing blocks.1.mlp.fc2.bias' in message

    sam = official_checkpoint('sam_vit_b')
    sam['image_encoder.blocks.0.attn.rel_pos_h'] = torch.zeros(5, 32)
    path = str(tmp_path / 'wrong_shape.pth')
    torch.save(sam, path)
    assert 'shape of blocks.0.attn.rel_pos_h' in one_line_error(lambda: build_vfm('sam_vit_b', path, tiny=True))


def test_unknown_type_and_override():
    message = one_line_error(lambda: build_vfm('dino_vitb32', None, download=False))
    assert "'dino_vitb32'" in message and all(name in message for name in SPECS)
    assert 'depht' in one_line_error(lambda: build_vfm('dino_vitb8', None, download=False,
                                                       config_overrides=dict(depht=2)))


# ---------------------------------------------------------------- (d) downloads

def test_offline_download_fails_in_one_line(tmp_path, monkeypatch):
    calls = []

    def offline(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(vfm_checkpoint, 'download_url_to_file', offline)
    message = one_line_error(lambda: build_vfm('dino_vitb8', None))
    url = SPECS['dino_vitb8'].url
    assert url in message and 'model.vfm.checkpoint=/path/to/dino_vitbase8_pretrain.pth' in message
    assert 'name resolution' in message
    assert calls == [url]  # no retries
    assert not os.listdir(os.path.join(os.environ['SCLIP_CACHE_DIR'], 'vfm'))


def test_download_goes_to_the_cache_once(tmp_path, monkeypatch, checkpoints):
    calls = []

    def fake_download(url, dst, *args, **kwargs):
        calls.append(url)
        with open(checkpoints['dinov2_vits14_reg'], 'rb') as src, open(dst, 'wb') as out:
            out.write(src.read())
    monkeypatch.setattr(vfm_checkpoint, 'download_url_to_file', fake_download)
    cache = tmp_path / 'cache'
    first = build_vfm('dinov2_vits14_reg', None, tiny=True, cache_dir=str(cache))
    second = build_vfm('dinov2_vits14_reg', None, tiny=True, cache_dir=str(cache))
    assert calls == [SPECS['dinov2_vits14_reg'].url]
    assert os.listdir(cache) == ['dinov2_vits14_reg4_pretrain.pth']
    assert torch.equal(first.vit.blocks[0].ls1.gamma, second.vit.blocks[0].ls1.gamma)
    default = build_vfm('dinov2_vits14_reg', None, tiny=True)  # $SCLIP_CACHE_DIR/vfm
    assert len(calls) == 2 and os.path.isfile(
        os.path.join(os.environ['SCLIP_CACHE_DIR'], 'vfm', 'dinov2_vits14_reg4_pretrain.pth'))
    assert torch.equal(default.register_tokens, first.register_tokens)


def test_corrupt_mae_download_is_removed(tmp_path, monkeypatch, checkpoints):
    def fake_download(url, dst, *args, **kwargs):
        with open(dst, 'wb') as out:
            out.write(b'truncated')
    monkeypatch.setattr(vfm_checkpoint, 'download_url_to_file', fake_download)
    message = one_line_error(lambda: build_vfm('mae_vit_b16', None, tiny=True, cache_dir=str(tmp_path)))
    assert 'md5' in message and SPECS['mae_vit_b16'].url in message
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------- fp16, as ProxyCLIP runs

FP16_CASES = [('dino_vitb8', 336, 224, 336), ('dinov2_vitb14_reg', 336, 224, 336), ('dinov2_vits14', 224, 336, 336),
              ('mae_vit_b16', 300, 260, 336), ('sam_vit_b', 200, 300, 336)]


@pytest.mark.parametrize('vfm_type,height,width,crop', FP16_CASES)
def test_fp16_features_are_bitwise_the_official_ones(checkpoints, vfm_type, height, width, crop):
    """ProxyCLIP runs ``vfm.half()`` on ``imgs_norm.half()``. In fp16 the order of the
    attention arithmetic (scale before or after q k^T) and the dtype of each positional
    resize show, so the same operations must give the same bits."""
    spec = get_spec(vfm_type, tiny=True)
    images = clip_crops(height, width)
    vfm = build_vfm(vfm_type, checkpoints[vfm_type], tiny=True).half()
    with torch.no_grad():
        got = vfm(proxy_input(images, vfm, crop))
    contents = torch.load(checkpoints[vfm_type], weights_only=True)
    x = official_vfm_input(images, 'none', crop, 0).half()
    if spec.family in ('sam', 'mae'):
        size = spec.image_size if spec.family == 'sam' else crop
        x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    if spec.family == 'mae':  # the position embedding is resized in float32 at load, then .half()
        contents = mae_load(contents['model'], spec.patch_size, crop)
    half = {k: v.half() for k, v in contents.items()} if spec.family != 'sam' else None
    with torch.no_grad():
        if spec.family == 'dino':
            expected = dino_reference(half, x, spec.patch_size, spec.heads)
        elif spec.family == 'dinov2':
            expected = dinov2_reference(half, x, spec.patch_size, spec.heads, spec.pos_offset, spec.pos_antialias)
        elif spec.family == 'mae':
            expected = mae_reference(half, x, spec.patch_size, spec.heads)
        else:
            expected = sam_reference(checkpoints[vfm_type], spec, x, torch.half)
    assert got.dtype == torch.half
    assert torch.equal(got, expected)


def test_misspelt_vfm_type_names_the_closest():
    from sclip.errors import SCLIPError
    from sclip.models.vfm.specs import get_spec
    for typo, meant in (('dinov2_vitb14reg', 'dinov2_vitb14_reg'), ('sam_vitb', 'sam_vit_b')):
        with pytest.raises(SCLIPError, match=f"did you mean '{meant}'"):
            get_spec(typo)
