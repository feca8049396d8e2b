"""Cross-check of the 2025-2026 checkpoint layouts against the families' real libraries (not part of the suite).

Needs transformers (DINOv3ConvNextModel), timm and open_clip_torch installed OUTSIDE the project's environment, the
torchvision stand-in for open_clip, and facebookresearch/dinov3's ``dinov3/models/convnext.py`` (plain PyTorch):

    pip install --target /tmp/xlibs transformers tokenizers timm open_clip_torch --no-deps
    DINOV3_CONVNEXT=/path/to/dinov3/dinov3/models/convnext.py \
    PYTHONPATH=$PWD:/tmp/xlibs:$PWD/benchmarks/torchvision_standin python benchmarks/crosscheck_weights_2025.py

Each family's model is built tiny with random weights and saved as the family saves it; our backbone loads the file
by itself and its maps must equal the family's own dense features to 1e-5.
"""
import importlib.util
import os
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from convnext_dense import ConvNeXt, load_backbone_checkpoint

_spec = importlib.util.spec_from_file_location('dinov3_convnext', os.environ['DINOV3_CONVNEXT'])
dinov3_convnext = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dinov3_convnext)

import timm  # noqa: E402  (after the stand-in and the dinov3 module)
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg  # noqa: E402
from timm.models.convnext import ConvNeXt as TimmConvNeXt  # noqa: E402
from timm.models.convnext import checkpoint_filter_fn  # noqa: E402
from transformers import DINOv3ConvNextConfig, DINOv3ConvNextModel  # noqa: E402

from convnext_dense.checkpoint.loading import map_state_dict  # noqa: E402

torch.manual_seed(0)
DEPTHS, DIMS = [1, 1, 2, 1], [8, 16, 24, 32]
ARCH = dict(depths=tuple(DEPTHS), channels=tuple(DIMS))
x = torch.randn(2, 3, 64, 96)
tmp = tempfile.mkdtemp()

def randomize(m):
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if p.dim() == 1 else 0.0))
    return m.eval()

def unit(t):
    return F.layer_norm(t.permute(0, 2, 3, 1), (t.shape[1],), eps=1e-6).permute(0, 3, 1, 2)

def ours(path, arch=ARCH):
    m = ConvNeXt(arch=arch).eval()
    r = load_backbone_checkpoint(m, path)
    with torch.no_grad():
        return list(m(x)), r

def report(name, got, want, r):
    err = max((a - b).abs().max().item() for a, b in zip(got, want))
    print(f'{name}: layout={r.layout} prefix={r.prefix!r} missing={len(r.missing)} unexpected={len(r.unexpected)} '
          f'norms={r.norms} not-backbone={r.classifier_parts} max|diff|={err:.2e}')
    assert err < 1e-5 and not r.missing and not r.unexpected

# 1. DINOv3's own module
d3 = randomize(dinov3_convnext.ConvNeXt(depths=DEPTHS, dims=DIMS))
sd = d3.state_dict()
print('dinov3 keys beyond official:', [k for k in sd if k.startswith('norm')])
torch.save(sd, f'{tmp}/dinov3.pth')
with torch.no_grad():
    raw = [o for o in d3.get_intermediate_layers(x, n=4, reshape=True, norm=False)]
    tokens = d3.forward_features(x)['x_norm_patchtokens']
    stage3 = tokens.transpose(1, 2).reshape(raw[3].shape)
got, r = ours(f'{tmp}/dinov3.pth')
report('dinov3', got, [unit(t) for t in raw[:3]] + [stage3], r)
print('  our stage 3 vs DINOv3 without its norm (old behaviour): max|diff|=%.2f' % (unit(raw[3]) - stage3).abs().max())
eupe = {**sd, 'projectors.0.weight': torch.randn(64, 32)}
torch.save(eupe, f'{tmp}/EUPE-ConvNeXt-T.pt')
got, r = ours(f'{tmp}/EUPE-ConvNeXt-T.pt')
report('eupe', got, [unit(t) for t in raw[:3]] + [stage3], r)

# 2. transformers DINOv3ConvNextModel, save_pretrained
hf = randomize(DINOv3ConvNextModel(DINOv3ConvNextConfig(depths=DEPTHS, hidden_sizes=DIMS)))
hf.save_pretrained(f'{tmp}/hf')
with torch.no_grad():
    out = hf(pixel_values=x, output_hidden_states=True)
hs = out.hidden_states[1:]
last = out.last_hidden_state[:, 1:].transpose(1, 2).reshape(hs[3].shape)
got, r = ours(f'{tmp}/hf/model.safetensors')
report('hf_dinov3', got, [unit(t) for t in hs[:3]] + [last], r)

# 3. timm's copy: checkpoint_filter_fn applied to the DINOv3 file (as timm's hub conversion), and to EUPE's
for name, src in (('timm_dinov3', sd), ('timm_eupe', eupe)):
    tm = TimmConvNeXt(depths=DEPTHS, dims=DIMS, num_classes=0).eval()
    filtered = checkpoint_filter_fn(dict(src), tm)
    tm.load_state_dict(filtered, strict=True)
    save_file({k: v.contiguous() for k, v in tm.state_dict().items()}, f'{tmp}/{name}.safetensors')
    with torch.no_grad():
        feats = tm.forward_intermediates(x, intermediates_only=True)
        normed = tm.head.norm(feats[3])  # head.norm on the map (DINOv3's norm)
    got, r = ours(f'{tmp}/{name}.safetensors')
    report(name, got, [unit(t) for t in feats[:3]] + [normed], r)

# 4. OpenCLIP with a timm ConvNeXt trunk (the convnext_* configs' vision_cfg, on a tiny trunk)
for proj in ('linear', 'mlp'):
    clip = CLIP(embed_dim=16, vision_cfg=CLIPVisionCfg(timm_model_name='convnext_atto', timm_pool='', timm_proj=proj,
                                                       image_size=64),
                text_cfg=CLIPTextCfg(context_length=8, vocab_size=50, width=16, heads=2, layers=1))
    trunk = clip.visual.trunk
    trunk_sd = randomize(clip).state_dict()
    save_file({k: v.contiguous() for k, v in trunk_sd.items()}, f'{tmp}/open_clip_model.safetensors')
    torch.save(trunk_sd, f'{tmp}/open_clip_pytorch_model.bin')
    with torch.no_grad():
        feats = trunk.forward_intermediates(x, intermediates_only=True)
    for f in ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin'):
        got, r = ours(f'{tmp}/{f}', arch='atto')
        report(f'openclip ({proj} head, {f})', got, [unit(t) for t in feats], r)

# 5. xxlarge: the names, shapes and eps of timm's / OpenCLIP's convnext_xxlarge, built on the meta device
with torch.device('meta'):
    tx = timm.create_model('convnext_xxlarge', num_classes=0)
torch.set_default_dtype(torch.bfloat16)  # ours on the CPU in half the memory (the meta device has no linspace data)
mine = ConvNeXt('xxlarge')
mapped = map_state_dict({f'visual.trunk.{k}': v for k, v in tx.state_dict().items()})
own = mine.state_dict()
shapes_ok = all(own[k].shape == v.shape for k, v in mapped.state_dict.items())
eps_t = {m.eps for m in tx.modules() if isinstance(m, torch.nn.LayerNorm)}
eps_o = {m.eps for m in mine.modules() if isinstance(m, torch.nn.LayerNorm)}
print(f'xxlarge: {len(mapped.state_dict)} mapped tensors, all in ours with equal shapes: {shapes_ok}, missing from '
      f'file: {sorted(set(own) - set(mapped.state_dict))}, eps timm {eps_t} ours {eps_o}')
assert shapes_ok and eps_t == eps_o == {1e-5}
print('ALL CROSS-CHECKS PASSED')
