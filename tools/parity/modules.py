"""Module fixtures: upstream PyTorch modules with random weights (and random BatchNorm
statistics), eval mode, forward and gradients w.r.t. the input and every parameter.

Each file holds `input`, `output`, `grad_output`, `grad_input`, `state.<key>` for every
state_dict entry (minus `num_batches_tracked`) and `grad_state.<key>` for every parameter.

    python tools/parity/modules.py
"""

from __future__ import annotations

import torch
from torchvision.models.segmentation.deeplabv3 import ASPP
from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPP as SmpASPP
from timm.layers import PatchEmbed
from timm.models.swin_transformer import PatchMerging, SwinTransformerBlock, WindowAttention
from torchvision.ops import deform_conv2d

from common import REPO_ROOT, save_case
from ops import BASE_ROIS, assert_away_from_borders, deform_roi_pool_port, image_rois

OUT = REPO_ROOT / "crates" / "zoo-nn" / "tests" / "fixtures"


def randomise_batchnorm(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def module_case(path, module: torch.nn.Module, input_shape, params: dict, seed: int, extra=None) -> None:
    """`extra`: further (non-differentiable) inputs, passed to the module after `input` and
    saved under their names."""
    module.eval()
    x = torch.randn(input_shape).requires_grad_(True)
    extra = extra or {}
    out = module(x, *extra.values())
    grad_output = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1))
    (out * grad_output).sum().backward()
    tensors = {"input": x, "output": out, "grad_output": grad_output, "grad_input": x.grad, **extra}
    for key, value in module.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            tensors[f"state.{key}"] = value
    for key, p in module.named_parameters():
        if p.grad is not None:  # unused parameters (the seed's OrderlessPooling has two)
            tensors[f"grad_state.{key}"] = p.grad
    save_case(path, tensors, params)


def aspp() -> None:
    cases = {
        "small": (8, 6, [1, 2], (9, 9)),
        "rect": (6, 4, [2, 3, 5], (7, 11)),
        "one_rate": (5, 3, [3], (6, 5)),
    }
    for seed, (name, (cin, cout, rates, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(seed)
        module = ASPP(cin, rates, cout)
        randomise_batchnorm(module)
        params = {"in_channels": cin, "out_channels": cout, "atrous_rates": rates}
        module_case(OUT / "aspp" / f"{name}.safetensors", module, (2, cin, h, w), params, seed)
    # smp's DeepLabV3+ ASPP: depthwise-separable atrous branches (exactly three rates).
    smp_cases = {"smp_separable": (8, 6, [1, 2, 3], (9, 10)), "smp_separable_rect": (6, 5, [2, 3, 4], (5, 12))}
    for seed, (name, (cin, cout, rates, (h, w))) in enumerate(smp_cases.items(), start=10):
        torch.manual_seed(seed)
        module = SmpASPP(cin, cout, rates, separable=True, dropout=0.5)
        randomise_batchnorm(module)
        params = {"in_channels": cin, "out_channels": cout, "atrous_rates": rates, "separable": True}
        module_case(OUT / "aspp" / f"{name}.safetensors", module, (2, cin, h, w), params, seed)


class DeformConvPack(torch.nn.Module):
    """mmcv's (Modulated)DeformConv2dPack semantics on torchvision's deform_conv2d: a
    `conv_offset` with the layer's geometry predicts offsets (and, for DCNv2, a mask from the
    last third of its channels, through a sigmoid)."""

    def __init__(self, cin, cout, k, stride, pad, dil, groups, offset_groups, modulated, bias):
        super().__init__()
        self.stride, self.pad, self.dil, self.modulated = stride, pad, dil, modulated
        self.weight = torch.nn.Parameter(torch.randn(cout, cin // groups, *k) * 0.2)
        self.bias = torch.nn.Parameter(torch.randn(cout) * 0.1) if bias else None
        per_tap = 3 if modulated else 2
        self.conv_offset = torch.nn.Conv2d(
            cin, per_tap * offset_groups * k[0] * k[1], k, stride, pad, dil, bias=True
        )
        with torch.no_grad():  # zero-initialised upstream; random here so offsets matter
            self.conv_offset.weight.normal_(0.0, 0.3)
            self.conv_offset.bias.normal_(0.0, 0.5)

    def forward(self, x):
        out = self.conv_offset(x)
        mask = None
        if self.modulated:
            split = out.shape[1] // 3 * 2
            out, mask = out[:, :split], torch.sigmoid(out[:, split:])
        return deform_conv2d(x, out, self.weight, self.bias, self.stride, self.pad, self.dil, mask)


def deform_conv() -> None:
    cases = {
        # name: (cin, cout, kernel, stride, padding, dilation, groups, offset_groups, modulated, bias, (h, w))
        "v1_3x3": (4, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, False, True, (7, 8)),
        "v2_3x3_s2": (4, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1, 1, True, False, (9, 7)),
        "v2_groups_3x2_d2": (4, 6, (3, 2), (1, 1), (2, 1), (2, 1), 2, 2, True, True, (6, 7)),
    }
    for seed, (name, c) in enumerate(cases.items()):
        cin, cout, k, stride, pad, dil, groups, og, modulated, bias, (h, w) = c
        torch.manual_seed(100 + seed)
        module = DeformConvPack(cin, cout, k, stride, pad, dil, groups, og, modulated, bias)
        params = {
            "in_channels": cin, "out_channels": cout, "kernel_size": list(k),
            "stride": list(stride), "padding": list(pad), "dilation": list(dil),
            "groups": groups, "offset_groups": og, "modulated": modulated, "bias": bias,
        }
        path = OUT / "deform_conv_module" / f"{name}.safetensors"
        module_case(path, module, (2, cin, h, w), params, 100 + seed)


class TransposedConvUpsampling(torch.nn.Module):
    """The seed's block: ConvTranspose2d(k=4, s=2, p=1) -> BN -> ReLU."""

    def __init__(self, cin, cout, kernel_size=4, stride=2, padding=1):
        super().__init__()
        self.deconv = torch.nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding)
        self.bn = torch.nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.deconv(x)))


class PixelShuffleUpsampling(torch.nn.Module):
    """The seed's block: Conv2d 3x3 to out*s^2 -> BN -> ReLU -> PixelShuffle(s)."""

    def __init__(self, cin, cout, s=2):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout * s * s, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(cout * s * s)
        self.shuffle = torch.nn.PixelShuffle(s)

    def forward(self, x):
        return self.shuffle(torch.relu(self.bn(self.conv(x))))


class BilinearUpsampling(torch.nn.Module):
    """The seed's block: bilinear (align_corners=False) x s -> Conv2d 1x1."""

    def __init__(self, cin, cout, s=2):
        super().__init__()
        self.s = s
        self.conv = torch.nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        x = torch.nn.functional.interpolate(x, scale_factor=self.s, mode="bilinear", align_corners=False)
        return self.conv(x)


class LearnedUpsampling(torch.nn.Module):
    """The seed's block: bilinear x s -> Conv2d 3x3 (bias) -> BN -> ReLU."""

    def __init__(self, cin, cout, s=2):
        super().__init__()
        self.s = s
        self.refine = torch.nn.Sequential(
            torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()
        )

    def forward(self, x):
        x = torch.nn.functional.interpolate(x, scale_factor=self.s, mode="bilinear", align_corners=False)
        return self.refine(x)


def upsampling() -> None:
    cases = {
        "transposed_conv": (TransposedConvUpsampling, 4, 3, 2),
        "pixel_shuffle": (PixelShuffleUpsampling, 4, 3, 2),
        "pixel_shuffle_x3": (PixelShuffleUpsampling, 3, 2, 3),
        "bilinear": (BilinearUpsampling, 4, 3, 2),
        "learned": (LearnedUpsampling, 4, 3, 2),
        "learned_x3": (LearnedUpsampling, 3, 5, 3),
    }
    for seed, (name, (cls, cin, cout, s)) in enumerate(cases.items()):
        torch.manual_seed(200 + seed)
        module = cls(cin, cout) if cls is TransposedConvUpsampling else cls(cin, cout, s)
        randomise_batchnorm(module)
        params = {"in_channels": cin, "out_channels": cout, "scale_factor": s}
        path = OUT / "upsample" / f"{name}.safetensors"
        module_case(path, module, (2, cin, 5, 6), params, 200 + seed)


class SoftAttentionPooling(torch.nn.Module):
    """The seed's soft attention pooling: 1x1 conv -> ReLU -> 1x1 conv scores, softmax over
    positions, weighted sum."""

    def __init__(self, channels, hidden_dim=None):
        super().__init__()
        hidden_dim = hidden_dim or channels // 4
        self.attention = torch.nn.Sequential(
            torch.nn.Conv2d(channels, hidden_dim, 1), torch.nn.ReLU(), torch.nn.Conv2d(hidden_dim, 1, 1)
        )

    def forward(self, x):
        b, c, h, w = x.shape
        weights = torch.softmax(self.attention(x).view(b, -1), dim=1).view(b, 1, h, w)
        return (x * weights).sum(dim=[2, 3])


class SelfAttentionPool(torch.nn.Module):
    """The seed's self-attention pool: SAGAN attention, gamma-gated residual, then GAP."""

    def __init__(self, channels):
        super().__init__()
        self.query = torch.nn.Conv2d(channels, channels // 8, 1)
        self.key = torch.nn.Conv2d(channels, channels // 8, 1)
        self.value = torch.nn.Conv2d(channels, channels, 1)
        self.gamma = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.query(x).view(b, -1, h * w).permute(0, 2, 1)
        k = self.key(x).view(b, -1, h * w)
        v = self.value(x).view(b, -1, h * w)
        attention = torch.softmax(torch.bmm(q, k), dim=-1)
        out = torch.bmm(v, attention.permute(0, 2, 1)).view(b, c, h, w)
        return (self.gamma * out + x).mean(dim=[2, 3])


class MultiHeadAttentionPooling(torch.nn.Module):
    """The seed's multi-head attention pooling with one learned query per head."""

    def __init__(self, channels, num_heads=4, head_dim=64):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        self.queries = torch.nn.Parameter(torch.randn(num_heads, head_dim))
        self.key_proj = torch.nn.Conv2d(channels, num_heads * head_dim, 1)
        self.value_proj = torch.nn.Conv2d(channels, num_heads * head_dim, 1)
        self.out_proj = torch.nn.Linear(num_heads * head_dim, channels)

    def forward(self, x):
        b, c, h, w = x.shape
        n = h * w
        keys = self.key_proj(x).view(b, self.num_heads, self.head_dim, n)
        values = self.value_proj(x).view(b, self.num_heads, self.head_dim, n)
        queries = self.queries.unsqueeze(0).unsqueeze(-1)
        attention = torch.matmul(queries.transpose(-2, -1), keys) / (self.head_dim**0.5)
        attention = torch.softmax(attention, dim=-1)
        attended = torch.matmul(values, attention.squeeze(-2).unsqueeze(-1))
        return self.out_proj(attended.squeeze(-1).view(b, -1))


class OrderlessPooling(torch.nn.Module):
    """The seed's orderless (first-order Fisher / NetVLAD-style) pooling."""

    def __init__(self, channels, num_components=64):
        super().__init__()
        self.means = torch.nn.Parameter(torch.randn(num_components, channels))
        self.log_vars = torch.nn.Parameter(torch.zeros(num_components, channels))
        self.mixture_weights = torch.nn.Parameter(torch.ones(num_components) / num_components)

    def forward(self, x):
        b, c, h, w = x.shape
        x_flat = x.view(b, c, h * w).permute(0, 2, 1).unsqueeze(2)
        diff = x_flat - self.means.unsqueeze(0).unsqueeze(1)
        assignments = torch.softmax(-(diff**2).sum(-1), dim=2)
        return (assignments.unsqueeze(-1) * diff).sum(dim=1).view(b, -1)


class HybridViTPooling(torch.nn.Module):
    """The seed's hybrid CNN + transformer pooling: 1x1 conv to tokens, one learned query,
    nn.MultiheadAttention (batch_first) over the tokens."""

    def __init__(self, in_channels, embed_dim=512, num_heads=8):
        super().__init__()
        self.to_tokens = torch.nn.Conv2d(in_channels, embed_dim, 1)
        self.query = torch.nn.Parameter(torch.randn(1, 1, embed_dim))
        self.cross_attn = torch.nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)

    def forward(self, x):
        b = x.shape[0]
        tokens = self.to_tokens(x).flatten(2).transpose(1, 2)
        pooled, _ = self.cross_attn(self.query.expand(b, -1, -1), tokens, tokens)
        return pooled.squeeze(1)


def attention_pools() -> None:
    cases = {"soft_default_hidden": (8, None, (5, 6)), "soft_hidden3": (6, 3, (4, 7))}
    for seed, (name, (c, hidden, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(300 + seed)
        module = SoftAttentionPooling(c, hidden)
        params = {"channels": c, "hidden_dim": hidden}
        path = OUT / "attention_pool" / f"{name}.safetensors"
        module_case(path, module, (2, c, h, w), params, 300 + seed)
    for seed, (name, (c, (h, w))) in enumerate({"self_16": (16, (5, 4)), "self_24": (24, (3, 6))}.items()):
        torch.manual_seed(310 + seed)
        module = SelfAttentionPool(c)
        with torch.no_grad():  # zero upstream at init; non-zero so the attention path counts
            module.gamma.fill_(0.7)
        path = OUT / "attention_pool" / f"{name}.safetensors"
        module_case(path, module, (2, c, h, w), {"channels": c}, 310 + seed)
    for seed, (name, (c, heads, dim, (h, w))) in enumerate(
        {"multihead_4x8": (6, 4, 8, (4, 5)), "multihead_2x5": (7, 2, 5, (3, 3))}.items()
    ):
        torch.manual_seed(320 + seed)
        module = MultiHeadAttentionPooling(c, heads, dim)
        params = {"channels": c, "num_heads": heads, "head_dim": dim}
        path = OUT / "attention_pool" / f"{name}.safetensors"
        module_case(path, module, (2, c, h, w), params, 320 + seed)
    for seed, (name, (c, k, (h, w))) in enumerate(
        {"orderless_k5": (6, 5, (4, 3)), "orderless_k3": (4, 3, (5, 5))}.items()
    ):
        torch.manual_seed(330 + seed)
        module = OrderlessPooling(c, k)
        with torch.no_grad():  # means near the data so the soft assignment is not one-hot
            module.means.mul_(0.5)
        path = OUT / "attention_pool" / f"{name}.safetensors"
        module_case(path, module, (2, c, h, w), {"channels": c, "num_components": k}, 330 + seed)
    for seed, (name, (c, e, heads, (h, w))) in enumerate(
        {"cross_e8_h2": (6, 8, 2, (4, 5)), "cross_e12_h3": (5, 12, 3, (3, 3))}.items()
    ):
        torch.manual_seed(340 + seed)
        module = HybridViTPooling(c, e, heads)
        with torch.no_grad():  # PyTorch zero-initialises the projection biases
            module.cross_attn.in_proj_bias.normal_(0.0, 0.1)
            module.cross_attn.out_proj.bias.normal_(0.0, 0.1)
        params = {"in_channels": c, "embed_dim": e, "num_heads": heads}
        path = OUT / "attention_pool" / f"{name}.safetensors"
        module_case(path, module, (2, c, h, w), params, 340 + seed)


def patch_embed() -> None:
    cases = {
        # name: (in, embed, patch, norm, pad, (h, w))
        "p4_norm": (3, 8, 4, True, False, (12, 16)),
        "p2_plain": (4, 6, 2, False, False, (6, 10)),
        "p4_norm_pad": (3, 5, 4, True, True, (10, 13)),
    }
    for seed, (name, (cin, e, p, norm, pad, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(400 + seed)
        module = PatchEmbed(
            img_size=None, patch_size=p, in_chans=cin, embed_dim=e,
            norm_layer=torch.nn.LayerNorm if norm else None, flatten=False, output_fmt="NHWC",
            strict_img_size=False, dynamic_img_pad=pad,
        )
        if norm:
            with torch.no_grad():
                module.norm.weight.uniform_(0.5, 1.5)
                module.norm.bias.normal_(0.0, 0.1)
        params = {"in_channels": cin, "embed_dim": e, "patch_size": p, "norm": norm, "pad": pad}
        module_case(OUT / "patch_embed" / f"{name}.safetensors", module, (2, cin, h, w), params, 400 + seed)


def patch_merging() -> None:
    cases = {"even_6x8": (4, None, (6, 8)), "odd_5x7": (3, None, (5, 7)), "odd_out5": (4, 5, (3, 4))}
    for seed, (name, (dim, out_dim, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(500 + seed)
        module = PatchMerging(dim, out_dim)
        with torch.no_grad():
            module.norm.weight.uniform_(0.5, 1.5)
            module.norm.bias.normal_(0.0, 0.1)
        params = {"dim": dim, "out_dim": out_dim}
        module_case(OUT / "patch_merging" / f"{name}.safetensors", module, (2, h, w, dim), params, 500 + seed)


def randomise_swin(module: torch.nn.Module) -> None:
    """LayerNorm affine parameters away from 1/0 and a bias table large enough to matter
    (timm initialises it with std 0.02)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
            if isinstance(m, WindowAttention):
                m.relative_position_bias_table.normal_(0.0, 0.5)
                if m.qkv.bias is not None:
                    m.qkv.bias.normal_(0.0, 0.1)


def window_attention() -> None:
    cases = {
        # name: (dim, heads, head_dim, window, qkv_bias, windows per image or None (no mask))
        "w4x4_mask": (8, 2, None, (4, 4), True, 3),
        "w3x2_nomask": (6, 3, None, (3, 2), True, None),
        "w2x3_headdim_nobias": (6, 2, 4, (2, 3), False, 2),
    }
    for seed, (name, (dim, heads, head_dim, window, qkv_bias, nw)) in enumerate(cases.items()):
        torch.manual_seed(800 + seed)
        module = WindowAttention(dim, heads, head_dim=head_dim, window_size=window, qkv_bias=qkv_bias)
        randomise_swin(module)
        n = window[0] * window[1]
        extra = {}
        if nw is not None:  # a 0 / -100 mask like Swin's, per window
            labels = torch.randint(0, 3, (nw, n))
            mask = (labels[:, None, :] != labels[:, :, None]).float() * -100.0
            extra["mask"] = mask
        batch = 2 * (nw or 2)
        params = {"dim": dim, "num_heads": heads, "head_dim": head_dim, "window_size": list(window),
                  "qkv_bias": qkv_bias}
        module_case(OUT / "window_attention" / f"{name}.safetensors", module, (batch, n, dim), params,
                    800 + seed, extra=extra)


def swin_block() -> None:
    cases = {
        # name: (dim, heads, input_resolution, window, shift, dynamic_mask, input (h, w))
        "noshift_8x8": (8, 2, (8, 8), 4, 0, False, (8, 8)),
        "shift_8x8": (8, 2, (8, 8), 4, 2, False, (8, 8)),
        "shift_pad_6x10": (8, 2, (6, 10), 4, 2, False, (6, 10)),
        "window_larger_than_map_3x5": (6, 3, (3, 5), 7, 3, False, (3, 5)),
        "window_shrinks_one_axis_3x9": (6, 2, (3, 9), 4, 2, False, (3, 9)),
        "other_input_size_dynamic_mask": (8, 2, (8, 8), 4, 2, True, (6, 11)),
    }
    for seed, (name, (dim, heads, res, window, shift, dynamic, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(900 + seed)
        module = SwinTransformerBlock(dim, res, num_heads=heads, window_size=window, shift_size=shift,
                                      dynamic_mask=dynamic, mlp_ratio=2.0)
        randomise_swin(module)
        params = {"dim": dim, "num_heads": heads, "input_resolution": list(res), "window_size": window,
                  "shift_size": shift, "mlp_ratio": 2.0,
                  "expected_window": list(module.window_size), "expected_shift": list(module.shift_size)}
        module_case(OUT / "swin_block" / f"{name}.safetensors", module, (2, h, w, dim), params, 900 + seed)


class DeformRoIPoolPack(torch.nn.Module):
    """mmcv's `DeformRoIPoolPack` on the pure-PyTorch port of its kernel (mmcv has no CPU
    op): pool without offsets, predict offsets with `offset_fc`, pool again."""

    def __init__(self, output_size, output_channels, deform_fc_channels, spatial_scale, sampling_ratio, gamma):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.gamma = sampling_ratio, gamma
        ph, pw = output_size
        self.offset_fc = torch.nn.Sequential(
            torch.nn.Linear(ph * pw * output_channels, deform_fc_channels), torch.nn.ReLU(inplace=True),
            torch.nn.Linear(deform_fc_channels, deform_fc_channels), torch.nn.ReLU(inplace=True),
            torch.nn.Linear(deform_fc_channels, ph * pw * 2),
        )

    def offsets(self, x, rois):
        args = (self.output_size, self.spatial_scale, self.sampling_ratio, self.gamma)
        pooled = deform_roi_pool_port(x, rois, None, *args)
        return self.offset_fc(pooled.reshape(rois.shape[0], -1)).view(rois.shape[0], 2, *self.output_size)

    def forward(self, x, rois):
        args = (self.output_size, self.spatial_scale, self.sampling_ratio, self.gamma)
        return deform_roi_pool_port(x, rois, self.offsets(x, rois), *args)


def deform_roi_pool_module() -> None:
    cases = {
        # name: (output_size, channels, fc, scale, sampling_ratio, gamma)
        "sr2_scale05": ([3, 3], 4, 16, 0.5, 2, 0.1),
        "adaptive_rect": ([2, 3], 3, 8, 1.0, 0, 0.2),
    }
    for seed, (name, (out_size, c, fc, scale, sr, gamma)) in enumerate(cases.items()):
        rois = image_rois(BASE_ROIS, scale)
        for attempt in range(50):  # the last layer is zero upstream; random so offsets matter
            torch.manual_seed(600 + 10 * seed + attempt)
            module = DeformRoIPoolPack(out_size, c, fc, scale, sr, gamma)
            with torch.no_grad():
                module.offset_fc[4].weight.normal_(0.0, 0.3)
                module.offset_fc[4].bias.normal_(0.0, 0.1)
            torch.manual_seed(700 + seed)
            probe = torch.randn(2, c, 12, 10)
            try:  # no sample of the deformed pooling near a border discontinuity
                offset = module.offsets(probe, rois).detach()
                assert_away_from_borders(rois, scale, out_size, sr, True, 12, 10, offset=offset, gamma=gamma)
                break
            except AssertionError:
                continue
        else:
            raise RuntimeError(f"deform_roi_pool_module/{name}: no offsets away from the borders")
        print(f"deform_roi_pool_module/{name}: attempt {attempt}, |offset| max {offset.abs().max():.3f}")
        torch.manual_seed(700 + seed)  # module_case draws the same input as the probe
        params = {"output_size": out_size, "output_channels": c, "deform_fc_channels": fc,
                  "spatial_scale": scale, "sampling_ratio": sr, "gamma": gamma}
        path = OUT / "deform_roi_pool_module" / f"{name}.safetensors"
        module_case(path, module, (2, c, 12, 10), params, 700 + seed, extra={"rois": rois})


if __name__ == "__main__":
    torch.set_num_threads(1)
    aspp()
    deform_conv()
    upsampling()
    attention_pools()
    patch_embed()
    patch_merging()
    deform_roi_pool_module()
    window_attention()
    swin_block()
