"""MediaPipe's 468-point face-landmark network in torch, weights read straight from face_landmark.tflite.

The tflite subgraph (NHWC, fp16 weights behind DEQUANTIZE ops) is replayed operator by operator in NCHW, so the
module is differentiable with respect to its input image while its own weights stay frozen. Input is [0, 1] RGB,
as MediaPipe feeds it (ImageToTensorCalculator, float range 0..1); [0, 1] also gives the clearest negative face
logits on non-faces (about -7 against -0.2 for [-1, 1]). The face output is a logit: MediaPipe applies a sigmoid
and keeps the face when the score passes 0.5.
"""
from __future__ import annotations

import os

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from torch import nn

from models.weights import mediapipe_asset

_OP_NAMES = {code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}
_NP_TYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
             tflite.TensorType.INT32: np.int32}
_ACTIVATIONS = {tflite.ActivationFunctionType.NONE: nn.Identity, tflite.ActivationFunctionType.RELU: nn.ReLU,
                tflite.ActivationFunctionType.RELU6: nn.ReLU6}
_OPTIONS = {"CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
            "MAX_POOL_2D": tflite.Pool2DOptions, "ADD": tflite.AddOptions}


class _TFLiteGraph:
    """The first subgraph of a .tflite file: operators in order, tensors by index, constants as numpy."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.model = tflite.Model.GetRootAsModel(f.read(), 0)
        self.graph = self.model.Subgraphs(0)
        self.consts = {}  # tensor index -> array; DEQUANTIZE outputs land here at load time

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(int(n) for n in self.graph.Tensors(i).ShapeAsNumpy())

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
                    raise NotImplementedError(f"{self.path}: op {k} {name}: fused activation "
                                              f"{options.FusedActivationFunction()} is not NONE, RELU or RELU6")
            yield name, ins, out, options


def _same_padding(in_hw, kernel, stride, dilation=(1, 1)) -> tuple[int, int, int, int]:
    """TF 'SAME' padding as F.pad's (left, right, top, bottom): the odd pixel goes after, not before."""
    (top, bottom), (left, right) = [
        (total // 2, total - total // 2)
        for total in (max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                      for n, k, s, d in zip(in_hw, kernel, stride, dilation))]
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
    """PAD with constant NHWC paddings replayed on NCHW (the graph zero-pads channels for residuals)."""

    def __init__(self, paddings):
        super().__init__()
        _, (top, bottom), (left, right), (front, back) = paddings.tolist()
        self.pads = (left, right, top, bottom, front, back)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


def _build(g: _TFLiteGraph, name: str, ins: list[int], options) -> nn.Module:
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
    raise NotImplementedError(f"{g.path}: operator {name} is not implemented by FaceMeshNet")


class FaceMeshNet(nn.Module):
    """MediaPipe's 468-point face-landmark network, weights read from face_landmark.tflite."""

    input_size = 192

    def __init__(self, tflite_path: str | os.PathLike | None = None):
        super().__init__()
        g = _TFLiteGraph(tflite_path or mediapipe_asset("face_landmark.tflite"))
        self.ops, self.wiring = nn.ModuleList(), []  # wiring[k]: (activation inputs, output) tensor indices
        for name, ins, out, options in g.operators():
            self.ops.append(_build(g, name, ins, options))
            self.wiring.append(([i for i in ins if i >= 0 and g.const(i) is None], out))
        self.input_index = int(g.graph.Inputs(0))
        # The two outputs told apart by size: 1404 = 468 x 3 landmark coordinates, 1 = face logit.
        outputs = {int(np.prod(g.shape(int(i)))): int(i) for i in g.graph.OutputsAsNumpy()}
        self.landmark_index, self.logit_index = outputs[468 * 3], outputs[1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FaceMeshNet:
        """Stay in eval mode whatever a parent module asks: this net is a frozen extractor."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 192, 192) RGB in [0, 1] -> landmarks (B, 468, 3) in crop pixels, face logit (B,)."""
        size = self.input_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"FaceMeshNet expects images of shape (B, 3, {size}, {size}), float RGB in [0, 1]; "
                             f"got {tuple(images.shape)}")
        values = {self.input_index: images}  # [0, 1] is what the net expects: no normalisation
        for op, (ins, out) in zip(self.ops, self.wiring):
            values[out] = op(*(values[i] for i in ins))
        return values[self.landmark_index].reshape(-1, 468, 3), values[self.logit_index].reshape(-1)


# First-pass square (left, top, side) around the face of skimage.data.astronaut(), in its 512 x 512 pixels;
# chosen by hand, face logit 21.4 there.
ASTRONAUT_BOX = (130.0, 40.0, 180.0)
# MediaPipe's landmarks-to-ROI step: the square on the landmarks' bounding box, enlarged 1.5x.
ROI_SCALE = 1.5


def crop_square(image: np.ndarray, box: tuple[float, float, float]) -> torch.Tensor:
    """Bilinear crop of a uint8 HxWx3 RGB image to the square (left, top, side) -> (3, 192, 192) in [0, 1]."""
    left, top, side = box
    height, width = image.shape[:2]
    centres = (torch.arange(FaceMeshNet.input_size, dtype=torch.float64) + 0.5) * side / FaceMeshNet.input_size
    # Continuous coordinates (image edge at 0) mapped so the image spans [-1, 1], as align_corners=False reads them.
    grid_y, grid_x = torch.meshgrid(2 * (top + centres) / height - 1, 2 * (left + centres) / width - 1, indexing="ij")
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    grid = torch.stack([grid_x, grid_y], dim=-1)[None].float()
    # Border replication, as MediaPipe's cropping does for boxes that leave the image.
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


def landmarks_to_box(points: np.ndarray) -> tuple[float, float, float]:
    """The next crop, MediaPipe-style but axis-aligned: a square on the points' box, ROI_SCALE x its long side."""
    low, high = points[:, :2].min(0), points[:, :2].max(0)
    side = ROI_SCALE * float((high - low).max())
    return float(low[0] + high[0] - side) / 2, float(low[1] + high[1] - side) / 2, side


def image_landmarks(net: FaceMeshNet, image: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """(468, 3) landmarks of the face in a square box of a uint8 image: x, y in image pixels, z scaled like x."""
    with torch.no_grad():
        landmarks = net(crop_square(image, box)[None].to(net.ops[0].weight.device))[0][0].double().cpu().numpy()
    left, top, side = box
    return landmarks * side / net.input_size + np.array([left, top, 0.0])


def astronaut_landmarks() -> np.ndarray:
    """(468, 3) float32 landmarks of skimage.data.astronaut()'s face: x, y in its 512 x 512 pixels, z scaled like x.

    One pass on ASTRONAUT_BOX, then one on the box its landmarks give (landmarks_to_box). Coordinates are
    continuous, MediaPipe's way: the image's left edge is x = 0, so pixel (row i, column j) is centred at
    (j + 0.5, i + 0.5).
    """
    from skimage import data  # bundled with scikit-image, never downloaded

    net, image = FaceMeshNet(), data.astronaut()
    first = image_landmarks(net, image, ASTRONAUT_BOX)
    return image_landmarks(net, image, landmarks_to_box(first)).astype(np.float32)
