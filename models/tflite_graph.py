"""A .tflite flatbuffer replayed operator by operator in torch: frozen weights, differentiable in the input.

Activations that tflite holds as 4-D NHWC live here as NCHW (torch's conv layout); lower-rank tensors keep
tflite's layout, so RESHAPE and CONCATENATION translate at the 4-D boundary. fp16 weights behind DEQUANTIZE
ops become float32 constants at load time. Covers the operators of MediaPipe's face-landmark and
short-range face-detection models; anything else raises NotImplementedError naming the file and operator.
"""

from __future__ import annotations

import os

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from torch import nn

from models.modes import AlwaysEval

_OP_NAMES = {code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}
_NP_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
}
_ACTIVATIONS = {
    tflite.ActivationFunctionType.NONE: nn.Identity,
    tflite.ActivationFunctionType.RELU: nn.ReLU,
    tflite.ActivationFunctionType.RELU6: nn.ReLU6,
}
_OPTIONS = {
    "CONV_2D": tflite.Conv2DOptions,
    "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
    "MAX_POOL_2D": tflite.Pool2DOptions,
    "ADD": tflite.AddOptions,
    "CONCATENATION": tflite.ConcatenationOptions,
}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


class TFLiteGraph:
    """The first subgraph of a .tflite file: operators in order, tensors by index, constants as numpy."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.model = tflite.Model.GetRootAsModel(f.read(), 0)
        self.graph = self.model.Subgraphs(0)
        self.consts = {}  # tensor index -> array; DEQUANTIZE outputs land here at load time

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(int(n) for n in self.graph.Tensors(i).ShapeAsNumpy())

    def name(self, i: int) -> str:
        return self.graph.Tensors(i).Name().decode()

    def const(self, i: int) -> np.ndarray | None:
        """A constant tensor in tflite's own layout, or None for an activation."""
        if i not in self.consts:
            tensor = self.graph.Tensors(i)
            data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
            if isinstance(data, int):  # the flatbuffer's way of saying "no data"
                return None
            self.consts[i] = data.view(_NP_TYPES[tensor.Type()]).reshape(self.shape(i))
        return self.consts[i]

    def operators(self):
        """Yield (name, input indices, output index, builtin options or None), DEQUANTIZE folded into consts."""
        for k in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(k)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = _OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            ins, (out,) = [int(i) for i in op.InputsAsNumpy()], [int(i) for i in op.OutputsAsNumpy()]
            if name == "DEQUANTIZE":  # fp16 weights become float32 constants once
                self.consts[out] = self.const(ins[0]).astype(np.float32)
                continue
            options = None
            if name in _OPTIONS:
                options = _OPTIONS[name]()
                options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
                if options.FusedActivationFunction() not in _ACTIVATIONS:
                    raise NotImplementedError(
                        f"{self.path}: op {k} {name}: fused activation "
                        f"{options.FusedActivationFunction()} is not NONE, RELU or RELU6"
                    )
            yield name, ins, out, options


def _same_padding(in_hw, kernel, stride, dilation=(1, 1)) -> tuple[int, int, int, int]:
    """TF 'SAME' padding as F.pad's (left, right, top, bottom): the odd pixel goes after, not before."""
    (top, bottom), (left, right) = [
        (total // 2, total - total // 2)
        for total in (
            max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0) for n, k, s, d in zip(in_hw, kernel, stride, dilation)
        )
    ]
    return left, right, top, bottom


class _Conv(nn.Module):
    """CONV_2D or DEPTHWISE_CONV_2D with exact TF padding and the fused activation."""

    def __init__(self, weight, bias, stride, dilation, groups, pads, activation):
        super().__init__()
        # Non-persistent: the tflite file is the source of truth, so callers' checkpoints stay small.
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("bias", bias, persistent=False)
        self.stride, self.dilation, self.groups, self.activation = stride, dilation, groups, activation
        # Symmetric padding goes inside the conv (no extra copy); TF's asymmetric SAME needs F.pad first.
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        self.padding, self.pre_pad = ((pads[2], pads[0]), None) if symmetric else ((0, 0), pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if self.pre_pad is None else F.pad(x, self.pre_pad)
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return self.activation(x)


class _MaxPool(nn.Module):
    """MAX_POOL_2D; SAME padding is -inf so that padded cells never win, as in TF."""

    def __init__(self, kernel, stride, pads, activation):
        super().__init__()
        self.kernel, self.stride, self.pads, self.activation = kernel, stride, pads, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.pads, value=float("-inf")) if any(self.pads) else x
        return self.activation(F.max_pool2d(x, self.kernel, self.stride))


class _PReLU(nn.Module):
    """PRELU with one slope per channel (tflite stores it as [1, 1, C])."""

    def __init__(self, alpha):
        super().__init__()
        self.register_buffer("alpha", alpha, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.alpha)


class _Add(nn.Module):
    """ADD of two activations with the fused activation."""

    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.activation(a + b)


class _Pad(nn.Module):
    """PAD with constant NHWC paddings replayed on NCHW (the graphs zero-pad channels for residuals)."""

    def __init__(self, paddings):
        super().__init__()
        _, (top, bottom), (left, right), (front, back) = paddings.tolist()
        self.pads = (left, right, top, bottom, front, back)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class _Reshape(nn.Module):
    """RESHAPE in tflite's element order: a 4-D input is read as NHWC, a 4-D output is stored back as NCHW."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(n) for n in shape[1:])  # the batch axis stays free

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1) if x.ndim == 4 else x
        x = x.reshape(x.shape[0], *self.shape)
        return x.permute(0, 3, 1, 2) if x.ndim == 4 else x


class _Concat(nn.Module):
    """CONCATENATION along tflite's axis (moved to NCHW's for 4-D tensors), with the fused activation."""

    def __init__(self, axis, rank, activation):
        super().__init__()
        axis = axis % rank
        self.axis, self.activation = _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis, activation

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.activation(torch.cat(xs, self.axis))


def _build(g: TFLiteGraph, name: str, ins: list[int], out: int, options) -> nn.Module:
    """One torch module for one tflite operator; weights move from NHWC-style layouts to torch's here."""
    activation = _ACTIVATIONS[options.FusedActivationFunction()]() if options is not None else None
    in_hw = g.shape(ins[0])[1:3]
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        depthwise = name == "DEPTHWISE_CONV_2D"
        # Kernels are OHWI (conv) or 1HWO (depthwise); torch wants OIHW, or O1HW with groups = in channels.
        weight = torch.from_numpy(g.const(ins[1]).astype(np.float32))
        weight = weight.permute(3, 0, 1, 2) if depthwise else weight.permute(0, 3, 1, 2)
        bias = torch.from_numpy(g.const(ins[2]).astype(np.float32)) if len(ins) > 2 and ins[2] >= 0 else None
        stride = (options.StrideH(), options.StrideW())
        dilation = (options.DilationHFactor(), options.DilationWFactor())
        same = options.Padding() == tflite.Padding.SAME
        pads = _same_padding(in_hw, weight.shape[2:], stride, dilation) if same else (0, 0, 0, 0)
        groups = g.shape(ins[0])[3] if depthwise else 1
        return _Conv(weight.contiguous(), bias, stride, dilation, groups, pads, activation)
    if name == "MAX_POOL_2D":
        kernel, stride = (options.FilterHeight(), options.FilterWidth()), (options.StrideH(), options.StrideW())
        same = options.Padding() == tflite.Padding.SAME
        return _MaxPool(kernel, stride, _same_padding(in_hw, kernel, stride) if same else (0, 0, 0, 0), activation)
    if name == "PRELU":
        alpha = g.const(ins[1]).astype(np.float32)
        if alpha.shape[-1] != alpha.size:
            raise NotImplementedError(f"{g.path}: PRELU alpha of shape {alpha.shape} is not per-channel")
        return _PReLU(torch.from_numpy(alpha.reshape(-1)))
    if name == "ADD":
        return _Add(activation)
    if name == "PAD":
        return _Pad(g.const(ins[1]))
    if name == "RELU":
        return nn.ReLU()
    if name == "RELU6":
        return nn.ReLU6()
    if name == "RESHAPE":
        return _Reshape(g.shape(out))  # the output tensor's shape; the optional shape input says the same
    if name == "CONCATENATION":
        return _Concat(options.Axis(), len(g.shape(out)), activation)
    raise NotImplementedError(f"{g.path}: tflite operator {name} is not implemented by models.tflite_graph")


class TFLiteNet(AlwaysEval):
    """A whole .tflite subgraph as a frozen torch module; `run` returns every output tensor by tflite index."""

    def __init__(self, tflite_path: str | os.PathLike):
        super().__init__()
        g = TFLiteGraph(tflite_path)
        self.ops, self.wiring = nn.ModuleList(), []  # wiring[k]: (activation inputs, output) tensor indices
        for name, ins, out, options in g.operators():
            self.ops.append(_build(g, name, ins, out, options))
            self.wiring.append(([i for i in ins if i >= 0 and g.const(i) is None], out))
        self.input_index = int(g.graph.Inputs(0))
        self.output_indices = {g.name(int(i)): int(i) for i in g.graph.OutputsAsNumpy()}
        self.output_shapes = {name: g.shape(i) for name, i in self.output_indices.items()}
        self.requires_grad_(False)
        self.eval()

    def run(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Replay the graph on an NCHW input; every tensor computed, by tflite tensor index."""
        values = {self.input_index: x}
        for op, (ins, out) in zip(self.ops, self.wiring):
            values[out] = op(*(values[i] for i in ins))
        return values
