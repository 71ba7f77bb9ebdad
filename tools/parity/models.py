"""Model fixtures: upstream models (torchvision, timm, smp), narrowed through their
constructors or a subclass so the files stay small while the key names stay upstream's.

Per case, two files under `crates/zoo-models/tests/fixtures/<model>/`:
- `<case>.safetensors`: `input`, the reference outputs (`output`, and named features), and
  the case's parameters as JSON metadata (zoo_testing::Fixture);
- `<case>.weights.safetensors` (or `.pth`): the model's `state_dict()` exactly as a user
  saves it (`safetensors.torch.save_file` / `torch.save`), read by zoo-models' loader.

    python tools/parity/models.py [GENERATOR...]

`train_step/<model>.safetensors` (from `train_steps`, which reads the forward cases' weights
and inputs) holds one training step's loss and gradients.
"""

from __future__ import annotations

import torch
from safetensors.torch import save_file
import segmentation_models_pytorch as smp
import timm
from segmentation_models_pytorch.base.heads import SegmentationHead
from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3PlusDecoder
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders._base import EncoderMixin
from segmentation_models_pytorch.encoders._utils import replace_strides_with_dilation
from segmentation_models_pytorch.encoders.resnet import ResNetEncoder
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabV3
from torchvision.models.segmentation.fcn import FCNHead

from common import REPO_ROOT, save_case

OUT = REPO_ROOT / "crates" / "zoo-models" / "tests" / "fixtures"


class NarrowResNet(ResNet):
    """torchvision's ResNet with stage widths base·(1, 2, 4, 8) instead of 64·(…); the body
    is torchvision's own `_make_layer`, so structure, dilation rule and keys are upstream's."""

    def __init__(self, block, layers, base, num_classes=1000, replace_stride_with_dilation=None):
        nn.Module.__init__(self)
        rswd = replace_stride_with_dilation or [False, False, False]
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = base, 1, 1, 64
        self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2, dilate=rswd[0])
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2, dilate=rswd[1])
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2, dilate=rswd[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(base * 8 * block.expansion, num_classes)


LAYOUTS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
           50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}


def randomise(module: nn.Module) -> None:
    """Random BatchNorm affine parameters and statistics (else eval BN is near identity)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            elif isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)


def save_weights(path, module: nn.Module, fmt: str) -> None:
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    if fmt == "pth":
        torch.save(state, str(path))
    else:
        save_file(state, str(path))


def resnet_features(model: ResNet, x: torch.Tensor) -> dict:
    stem = model.relu(model.bn1(model.conv1(x)))
    c2 = model.layer1(model.maxpool(stem))
    c3 = model.layer2(c2)
    c4 = model.layer3(c3)
    c5 = model.layer4(c4)
    return {"stem": stem, "c2": c2, "c3": c3, "c4": c4, "c5": c5}


def resnet() -> None:
    cases = {
        # name: (depth, base, classes, dilation (stages 2-4), rule, input hw, weights format)
        "r18_classifier": (18, 4, 5, [False, False, False], "Torchvision", (64, 64), "safetensors"),
        "r34_uniform_os16": (34, 2, None, [False, False, True], "Uniform", (48, 64), "pth"),
        "r50_torchvision_os8": (50, 2, None, [False, True, True], "Torchvision", (64, 48), "safetensors"),
        "r101_classifier": (101, 2, 3, [False, False, False], "Torchvision", (32, 32), "safetensors"),
        "r18_uniform_os8": (18, 4, None, [False, True, True], "Uniform", (40, 40), "safetensors"),
    }
    for seed, (name, (depth, base, classes, dil, rule, (h, w), fmt)) in enumerate(cases.items()):
        torch.manual_seed(1000 + seed)
        block, layers = LAYOUTS[depth]
        if rule == "Torchvision":
            model = NarrowResNet(block, layers, base, classes or 1000, dil)
        else:  # smp's make_dilated on an undilated torchvision net
            model = NarrowResNet(block, layers, base, classes or 1000)
            for stage, (flag, rate) in enumerate(zip(dil, _uniform_rates(dil))):
                if flag:
                    replace_strides_with_dilation(getattr(model, f"layer{stage + 2}"), rate)
        if classes is None:
            del model.fc  # a backbone: no head keys in its state dict
        randomise(model)
        model.eval()
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            tensors = {"input": x, **resnet_features(model, x)}
            if classes is not None:
                tensors["output"] = model.fc(torch.flatten(model.avgpool(tensors["c5"]), 1))
        params = {"depth": depth, "base_channels": base, "num_classes": classes,
                  "replace_stride_with_dilation": dil, "dilation_rule": rule, "weights": f"{name}.weights.{fmt}"}
        save_case(OUT / "resnet" / f"{name}.safetensors", tensors, params)
        save_weights(OUT / "resnet" / f"{name}.weights.{fmt}", model, fmt)


def _uniform_rates(dil):
    """smp's make_dilated rates for stages 2..4: stride // output_stride of each dilated one."""
    os = 32 >> sum(dil)
    strides = [8, 16, 32]
    return [s // os if s > os else 1 for s in strides]


class NarrowEncoder(NarrowResNet, EncoderMixin):
    """smp's ResNetEncoder on a NarrowResNet: the same forward (input, stem, C2..C5), keys
    and `make_dilated`, without fc/avgpool."""

    def __init__(self, block, layers, base, depth=5, output_stride=32):
        NarrowResNet.__init__(self, block, layers, base)
        self._depth, self._in_channels, self._output_stride = depth, 3, output_stride
        e = block.expansion
        self._out_channels = [3, base, base * e, base * 2 * e, base * 4 * e, base * 8 * e]
        del self.fc
        del self.avgpool

    get_stages = ResNetEncoder.get_stages
    forward = ResNetEncoder.forward


def smp_model(cls, depth, base, output_stride=32, **kwargs):
    """An smp model built with a full-size encoder, whose encoder and decoder are then swapped
    for narrow ones (same classes, so the key names are smp's)."""
    block, layers = LAYOUTS[depth]
    model = cls(encoder_name=f"resnet{depth}", encoder_weights=None, **kwargs)
    encoder = NarrowEncoder(block, layers, base, output_stride=output_stride)
    if output_stride != 32:
        encoder.make_dilated(output_stride)
    model.encoder = encoder
    return model, encoder.out_channels


def narrow_deeplabv3(depth, base, hc, rates, aux, classes) -> DeepLabV3:
    """torchvision's DeepLabV3 (output stride 8) on a NarrowResNet, ASPP and head at `hc`
    channels, optional FCN aux head on layer3."""
    block, layers = LAYOUTS[depth]
    backbone = NarrowResNet(block, layers, base, 10, [False, True, True])
    c5, c4 = base * 8 * block.expansion, base * 4 * block.expansion
    return_layers = {"layer4": "out", "layer3": "aux"} if aux else {"layer4": "out"}
    backbone = IntermediateLayerGetter(backbone, return_layers=return_layers)
    head = nn.Sequential(ASPP(c5, rates, hc), nn.Conv2d(hc, hc, 3, padding=1, bias=False),
                         nn.BatchNorm2d(hc), nn.ReLU(), nn.Conv2d(hc, classes, 1))
    return DeepLabV3(backbone, head, FCNHead(c4, classes) if aux else None)


def deeplabv3() -> None:
    cases = {
        # name: (depth, base, head channels, rates, aux, input hw)
        "r50_os8_aux": (50, 2, 16, [12, 24, 36], True, (40, 48)),
        "r101_os8_rates2": (101, 2, 8, [2, 4], False, (33, 29)),
    }
    for seed, (name, (depth, base, hc, rates, aux, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(1100 + seed)
        model = narrow_deeplabv3(depth, base, hc, rates, aux, 3)
        randomise(model)
        model.eval()
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            result = model(x)
        tensors = {"input": x, "output": result["out"]}
        if aux:
            tensors["aux"] = result["aux"]
        params = {"depth": depth, "base_channels": base, "head_channels": hc, "atrous_rates": rates,
                  "aux_head": aux, "num_classes": 3, "weights": f"{name}.weights.safetensors"}
        save_case(OUT / "deeplabv3" / f"{name}.safetensors", tensors, params)
        save_weights(OUT / "deeplabv3" / f"{name}.weights.safetensors", model, "safetensors")


def deeplabv3plus() -> None:
    cases = {
        # name: (depth, base, output stride, decoder channels, input hw)
        "r18_os16": (18, 4, 16, 16, (64, 48)),
        "r50_os8": (50, 2, 8, 8, (40, 32)),
    }
    for seed, (name, (depth, base, os, dc, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(1200 + seed)
        model, channels = smp_model(smp.DeepLabV3Plus, depth, base, output_stride=os,
                                    encoder_output_stride=os, decoder_channels=dc, classes=3)
        model.decoder = DeepLabV3PlusDecoder(channels, 5, dc, (12, 24, 36), os, True, 0.5)
        model.segmentation_head = SegmentationHead(dc, 3, kernel_size=1, upsampling=4)
        randomise(model)
        model.eval()
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            out = model(x)
        params = {"depth": depth, "base_channels": base, "output_stride": os, "decoder_channels": dc,
                  "num_classes": 3, "weights": f"{name}.weights.safetensors"}
        save_case(OUT / "deeplabv3plus" / f"{name}.safetensors", {"input": x, "output": out}, params)
        save_weights(OUT / "deeplabv3plus" / f"{name}.weights.safetensors", model, "safetensors")


def unet() -> None:
    cases = {
        # name: (depth, base, decoder channels, input hw, weights format)
        "r18_64x64": (18, 4, [16, 8, 8, 4, 4], (64, 64), "safetensors"),
        "r34_96x64": (34, 2, [8, 8, 4, 4, 2], (96, 64), "pth"),
    }
    for seed, (name, (depth, base, dcs, (h, w), fmt)) in enumerate(cases.items()):
        torch.manual_seed(1300 + seed)
        model, channels = smp_model(smp.Unet, depth, base, decoder_channels=dcs, classes=3)
        model.decoder = UnetDecoder(channels, dcs, n_blocks=5)
        model.segmentation_head = SegmentationHead(dcs[-1], 3, kernel_size=3)
        randomise(model)
        model.eval()
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            out = model(x)
        params = {"depth": depth, "base_channels": base, "decoder_channels": dcs, "num_classes": 3,
                  "weights": f"{name}.weights.{fmt}"}
        save_case(OUT / "unet" / f"{name}.safetensors", {"input": x, "output": out}, params)
        save_weights(OUT / "unet" / f"{name}.weights.{fmt}", model, fmt)


def swin() -> None:
    cases = {
        # name: (img size, embed, depths, heads, window, classes, input hw, strict)
        "e8_w4_64": ((64, 64), 8, (2, 2, 2, 2), (1, 2, 2, 4), 4, 5, (64, 64), True),
        "e8_w4_other_size": ((64, 64), 8, (2, 2, 2, 2), (1, 1, 2, 2), 4, None, (72, 52), False),
    }
    for seed, (name, (img, e, depths, heads, window, classes, (h, w), strict)) in enumerate(cases.items()):
        torch.manual_seed(1400 + seed)
        model = timm.models.swin_transformer.SwinTransformer(
            img_size=img, patch_size=4, embed_dim=e, depths=depths, num_heads=heads, window_size=window,
            num_classes=classes or 0, strict_img_size=strict, mlp_ratio=2.0,
        )
        randomise(model)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, timm.models.swin_transformer.WindowAttention):
                    m.relative_position_bias_table.normal_(0.0, 0.5)
        model.eval()
        x = torch.randn(2, 3, h, w)
        tensors = {"input": x}
        with torch.no_grad():
            if classes:
                tensors["output"] = model(x)
            x_ = model.patch_embed(x)
            for i, stage in enumerate(model.layers):
                x_ = stage(x_)
                tensors[f"stage{i}"] = x_.permute(0, 3, 1, 2)
        params = {"img_size": list(img), "embed_dim": e, "depths": list(depths), "num_heads": list(heads),
                  "window_size": window, "num_classes": classes, "mlp_ratio": 2.0,
                  "weights": f"{name}.weights.safetensors"}
        save_case(OUT / "swin" / f"{name}.safetensors", tensors, params)
        save_weights(OUT / "swin" / f"{name}.weights.safetensors", model, "safetensors")


TRAIN_STEP_KEYS = {
    "deeplabv3/r50_os8_aux": [
        "backbone.conv1.weight", "backbone.bn1.weight", "backbone.layer1.0.conv1.weight",
        "backbone.layer3.0.downsample.0.weight", "backbone.layer4.2.conv2.weight",
        "backbone.layer4.2.bn3.bias", "classifier.0.convs.1.0.weight", "classifier.0.convs.4.1.weight",
        "classifier.0.project.0.weight", "classifier.4.weight", "classifier.4.bias",
        "aux_classifier.0.weight", "aux_classifier.4.weight",
    ],
    "unet/r18_64x64": [
        "encoder.conv1.weight", "encoder.layer2.0.conv1.weight", "encoder.layer4.1.bn2.weight",
        "decoder.blocks.0.conv1.0.weight", "decoder.blocks.4.conv2.0.weight",
        "segmentation_head.0.weight", "segmentation_head.0.bias",
    ],
    "swin/e8_w4_64": [
        "patch_embed.proj.weight", "layers.0.blocks.1.attn.qkv.weight",
        "layers.0.blocks.1.attn.relative_position_bias_table", "layers.1.downsample.reduction.weight",
        "layers.3.blocks.1.mlp.fc2.weight", "norm.weight", "head.fc.weight",
    ],
}


ROUNDING_NOISE, ROUNDING_LIMIT = 3e-7, 1.0


def rounding_sensitivity(model: nn.Module, step, reference: dict, repeats: int = 8) -> float:
    """How far float32 rounding may move a train step: the worst |g - g0| / (1e-3 + 1e-3·|g0|)
    (the Rust test's gradient tolerance) over the gradients of `reference` when `step` is rerun
    with every Conv2d, BatchNorm2d, Linear and LayerNorm output multiplied by
    1 + ROUNDING_NOISE·N(0, 1), `repeats` independent times."""
    gen = torch.Generator().manual_seed(0)

    def jitter(_module, _inputs, out):
        return out + out * ROUNDING_NOISE * torch.randn(out.shape, generator=gen, dtype=out.dtype)

    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.LayerNorm)
    hooks = [m.register_forward_hook(jitter) for m in model.modules() if isinstance(m, kinds)]
    try:
        runs = [step() for _ in range(repeats)]
    finally:
        for hook in hooks:
            hook.remove()
    return max(((g[k] - g0).abs() / (1e-3 + 1e-3 * g0.abs())).max().item()
               for g in runs for k, g0 in reference.items() if k.startswith("grad"))


def train_steps() -> None:
    """One training step of each segmentation/classification model, from its forward case's
    weights: training mode (BatchNorm on batch statistics; dropout and stochastic depth off,
    as the Rust test sets them, so the step is deterministic), cross-entropy against random
    targets (DeepLabV3: plus 0.5 × the auxiliary head's), and the gradients of the loss with
    respect to the input and the parameters named in `TRAIN_STEP_KEYS`.

    Computed in float64; the Rust test runs float32 at a tolerance of 1e-3·(1 + |ref|). A
    training-mode step of a deep BatchNorm net is ill-conditioned: through DeepLabV3's narrow
    ResNet-50 a perturbation grows about 100-fold forward and the gradients about 200-fold
    backward, and where it pushes a pre-ReLU value near zero across, the gradients jump by
    10-1000 tolerances. So a step is written only if `rounding_sensitivity` < ROUNDING_LIMIT:
    relative noise of 3e-7 (about 5 float32 roundings) at every layer output moves no stored
    gradient by the test's tolerance. DeepLabV3 gets its own batch of 8 at 24×24 (its forward
    case has 2 samples: the image-pooling branch's BatchNorm over 2 values is ill-conditioned),
    with input and target seeds picked from thousands for that: 0.43, where the former input
    (seed 0) scores 74 and float32 PyTorch without oneDNN misses it by 74 tolerances. Even
    without such jumps its gradients move by at least 5e5 tolerances per unit of noise on every
    input tried, so none passes at noise 1e-6. U-Net scores 0.003, Swin 0.0007."""
    from safetensors.torch import load_file
    import torch.nn.functional as F

    for seed, (case, keys) in enumerate(TRAIN_STEP_KEYS.items()):
        model_name, name = case.split("/")
        fixture = load_file(str(OUT / model_name / f"{name}.safetensors"))
        gen = torch.Generator().manual_seed(1500 + seed)
        tensors = {}
        if model_name == "deeplabv3":
            model = narrow_deeplabv3(50, 2, 16, [12, 24, 36], True, 3)
            x = torch.randn(8, 3, 24, 24, generator=torch.Generator().manual_seed(1595))
            gen.manual_seed(1519)
            tensors["input"] = x
        elif model_name == "unet":
            model, channels = smp_model(smp.Unet, 18, 4, decoder_channels=[16, 8, 8, 4, 4], classes=3)
            model.decoder = UnetDecoder(channels, [16, 8, 8, 4, 4], n_blocks=5)
            model.segmentation_head = SegmentationHead(4, 3, kernel_size=3)
            x = fixture["input"]
        else:
            model = timm.models.swin_transformer.SwinTransformer(
                img_size=(64, 64), patch_size=4, embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
                window_size=4, num_classes=5, mlp_ratio=2.0, drop_path_rate=0.0)
            x = fixture["input"]
        model.load_state_dict(load_file(str(OUT / model_name / f"{name}.weights.safetensors")))
        model = model.double().train()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        if model_name == "swin":
            target = torch.randint(0, 5, (x.shape[0],), generator=gen)
        else:
            target = torch.randint(0, 3, (x.shape[0], *x.shape[2:]), generator=gen)
        named = dict(model.named_parameters())

        def step():
            inp = x.double().requires_grad_(True)
            out = model(inp)
            if isinstance(out, dict):
                loss = F.cross_entropy(out["out"], target) + 0.5 * F.cross_entropy(out["aux"], target)
            else:
                loss = F.cross_entropy(out, target)
            grads = torch.autograd.grad(loss, [inp, *(named[k] for k in keys)])
            return {"loss": loss.detach().reshape(1), "grad_input": grads[0],
                    **{f"grad.{k}": g for k, g in zip(keys, grads[1:])}}

        tensors.update({"target": target, **step()})
        worst = rounding_sensitivity(model, step, tensors)
        print(f"train_step/{model_name}: rounding sensitivity {worst:.3g} (limit {ROUNDING_LIMIT})")
        if worst >= ROUNDING_LIMIT:
            raise SystemExit(f"train_step/{model_name}: float32 rounding can move a gradient by "
                             f"{worst:.3g} tolerances; choose another input/target seed (not written)")
        params = {"model": model_name, "case": name, "aux_weight": 0.5 if model_name == "deeplabv3" else None}
        save_case(OUT / "train_step" / f"{model_name}.safetensors", tensors, params)


if __name__ == "__main__":
    import sys

    torch.set_num_threads(1)
    chosen = sys.argv[1:]  # generator names; all of them when none is given
    for generator in (resnet, deeplabv3, deeplabv3plus, unet, swin, train_steps):
        if not chosen or generator.__name__ in chosen:
            generator()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures under {OUT}: {total / 1024:.0f} KiB")
