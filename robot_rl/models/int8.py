"""Int8 inference copies of convolutional networks, for batch-1 serving on CPU.

At batch 1 a diffusion policy's U-Net reads every weight once per denoising step and does
little arithmetic with it (the sequence is 4-16 steps long), so a step costs the time to
stream the weights through the CPU: 254 MB per call for the 63M-parameter U-Net. Stored
as int8 they are a quarter of that. `quantize_int8` returns a copy of a module in which

    Conv1d(i -> o, k)            becomes  unfold (im2col) ──► Linear(i*k -> o)
    ConvTranspose1d(i -> o, k)   becomes  Linear(i -> o*k) ──► overlap-add (fold)
    and those Linears            become   int8 weights, per output channel, with activations
                                          quantized per call (dynamic quantization, fbgemm)

The last convolution (the output layer), the module's own Linears (FiLM and step encoders:
4% of the 63M U-Net's weights), GroupNorm, Mish and the residual additions stay float32.
The copy is for inference on CPU only: it cannot be trained, saved as a checkpoint, or moved
to a GPU. Its outputs
differ from the float32 network's by the rounding of weights and activations; what that
does to a policy is measured by its success rate (README, "Int8 inference"), not assumed.

Uses torch.ao's dynamic quantization (fbgemm / x86 kernels), which torch marks deprecated in
favour of torchao but still ships; the conversion fails with a clear error if it is gone.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn


class Conv1dAsLinear(nn.Module):
    """A Conv1d (any stride and padding, no dilation or groups) as im2col plus one Linear."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        if conv.groups != 1 or conv.dilation[0] != 1 or conv.padding_mode != "zeros":
            raise ValueError(f"{conv}: only plain convolutions (groups 1, dilation 1, zero padding)")
        out_ch, in_ch, k = conv.weight.shape
        self.kernel, self.stride, self.padding = k, conv.stride[0], conv.padding[0]
        self.linear = nn.Linear(in_ch * k, out_ch, bias=conv.bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(conv.weight.reshape(out_ch, in_ch * k))  # index c * k + j
            if conv.bias is not None:
                self.linear.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, O, L')
        if self.padding:
            x = F.pad(x, (self.padding, self.padding))
        cols = x.unfold(2, self.kernel, self.stride)  # (B, C, L', k)
        cols = cols.permute(0, 2, 1, 3).reshape(x.shape[0], cols.shape[2], -1)  # (B, L', C*k)
        return self.linear(cols).transpose(1, 2)


class ConvTranspose1dAsLinear(nn.Module):
    """A ConvTranspose1d as one Linear per input step, then overlap-add of the kernels."""

    def __init__(self, conv: nn.ConvTranspose1d):
        super().__init__()
        if conv.groups != 1 or conv.dilation[0] != 1 or conv.output_padding[0] != 0:
            raise ValueError(f"{conv}: only plain transposed convolutions (groups 1, dilation 1)")
        in_ch, out_ch, k = conv.weight.shape
        self.kernel, self.stride, self.padding, self.out_ch = k, conv.stride[0], conv.padding[0], out_ch
        self.linear = nn.Linear(in_ch, out_ch * k, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(conv.weight.reshape(in_ch, out_ch * k).t())  # index o * k + j
        bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(out_ch)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, O, L')
        b, _, steps = x.shape
        cols = self.linear(x.transpose(1, 2)).transpose(1, 2)  # (B, O*k, L): one kernel per step
        full = (steps - 1) * self.stride + self.kernel
        y = F.fold(cols, (1, full), (1, self.kernel), stride=(1, self.stride)).reshape(b, self.out_ch, full)
        return y[:, :, self.padding : full - self.padding] + self.bias[:, None]


def convs_as_linear(module: nn.Module) -> nn.Module:
    """Replace every Conv1d / ConvTranspose1d in `module` (in place) by its Linear form."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv1d):
            setattr(module, name, Conv1dAsLinear(child))
        elif isinstance(child, nn.ConvTranspose1d):
            setattr(module, name, ConvTranspose1dAsLinear(child))
        else:
            convs_as_linear(child)
    return module


def quantize_int8(module: nn.Module) -> nn.Module:
    """An int8 inference copy of `module` (its 1-D convolutions but the last), on CPU, in eval mode."""
    params = list(module.parameters())
    if params and params[0].device.type != "cpu":
        raise ValueError(f"int8 inference runs on CPU; the module is on {params[0].device}")
    if not hasattr(torch.ao, "quantization") or not hasattr(torch.ao.quantization, "quantize_dynamic"):
        raise RuntimeError(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic")
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("x86", "fbgemm", "qnnpack") if e in engines), None)
    if engine is None:
        raise RuntimeError(f"torch {torch.__version__} has no int8 CPU engine (it has {engines})")
    torch.backends.quantized.engine = engine  # process-wide: the kernels int8 Linears run with
    linear = convs_as_linear(copy.deepcopy(module)).eval()
    convs = [m.linear for m in linear.modules() if isinstance(m, (Conv1dAsLinear, ConvTranspose1dAsLinear))]
    targets = set(convs[:-1])  # the last convolution is the output layer: it stays float32
    with warnings.catch_warnings():  # torch.ao's deprecation notices, on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        names = {name for name, m in linear.named_modules() if m in targets}
        quantized = torch.ao.quantization.quantize_dynamic(
            linear, dict.fromkeys(names, qconfig), dtype=torch.qint8
        )
    for p in quantized.parameters():
        p.requires_grad_(False)
    return quantized
