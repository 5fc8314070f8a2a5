"""BERT's forward pass as an ONNX graph, built in memory from the model's safetensors weights
(no export step, no torch, no file to cache), for ONNX Runtime and OpenVINO to fuse and run."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from docqa.index.encoders.weights import BertWeights


def bert_graph(bert: BertWeights) -> Any:
    """An ONNX model of BERT's forward pass: (tokens, mask) -> hidden states, the same
    operations as docqa.index.encoders.numpy_bert.Forward."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    weights = dict(bert.tensors)
    width = bert.width
    size = width // bert.heads

    def constant(name: str, value: Any, dtype: Any = np.float32) -> str:
        weights[name] = np.asarray(value, dtype=dtype)
        return name

    def op(kind: str, *inputs: str, **attributes: Any) -> str:
        output = f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, list(inputs), [output], **attributes))
        return output

    def linear(x: str, name: str) -> str:
        weights[name + ".weight.T"] = np.ascontiguousarray(weights.pop(name + ".weight").T)
        return op("Add", op("MatMul", x, name + ".weight.T"), name + ".bias")

    def norm(x: str, name: str) -> str:
        return op(
            "LayerNormalization", x, name + ".weight", name + ".bias", axis=-1, epsilon=bert.eps
        )

    def gelu(x: str) -> str:  # x * Phi(x), in the form ONNX Runtime fuses into one kernel
        scaled = op("Erf", op("Div", x, constant("sqrt2", math.sqrt(2.0))))
        return op("Mul", op("Mul", x, op("Add", scaled, constant("one", 1.0))), "half")

    constant("half", 0.5)
    heads_shape = constant("heads_shape", [0, 0, bert.heads, size], np.int64)
    length = op("Gather", op("Shape", "tokens"), constant("axis1", [1], np.int64), axis=0)
    positions = op(
        "Slice", "embeddings.position_embeddings.weight", constant("zero", [0], np.int64), length
    )
    token_type = constant("token_type", weights["embeddings.token_type_embeddings.weight"][0])
    x = op("Gather", "embeddings.word_embeddings.weight", "tokens", axis=0)
    x = norm(op("Add", op("Add", x, positions), token_type), "embeddings.LayerNorm")
    ignored = op(
        "Sub", constant("one", 1.0), op("Unsqueeze", "mask", constant("axes", [1, 2], np.int64))
    )
    padding = op("Mul", ignored, constant("minus_inf", -1e9))
    scale = constant("scale", 1.0 / math.sqrt(size))
    for i in range(bert.layers):
        p = f"encoder.layer.{i}."

        def heads(name: str, perm: list[int], x: str = x, p: str = p) -> str:
            projected = linear(x, p + "attention.self." + name)
            return op("Transpose", op("Reshape", projected, heads_shape), perm=perm)

        q, k, v = (
            heads("query", [0, 2, 1, 3]),
            heads("key", [0, 2, 3, 1]),
            heads("value", [0, 2, 1, 3]),
        )
        scores = op("Add", op("Mul", op("MatMul", q, k), scale), padding)
        context = op("MatMul", op("Softmax", scores, axis=-1), v)
        merged = op(
            "Reshape",
            op("Transpose", context, perm=[0, 2, 1, 3]),
            constant("merged_shape", [0, 0, width], np.int64),
        )
        x = norm(
            op("Add", x, linear(merged, p + "attention.output.dense")),
            p + "attention.output.LayerNorm",
        )
        inner = gelu(linear(x, p + "intermediate.dense"))
        x = norm(op("Add", x, linear(inner, p + "output.dense")), p + "output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    used = {name for node in nodes for name in node.input}

    graph = helper.make_graph(
        nodes,
        "bert",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", width])],
        [numpy_helper.from_array(value, name) for name, value in weights.items() if name in used],
    )
    return onnx.helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
