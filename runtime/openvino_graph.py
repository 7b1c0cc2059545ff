"""Rewrite the compose stage's graph for OpenVINO's CPU plugin, keeping its arithmetic.

OpenVINO fuses chains of element-wise operations into one JIT kernel (a
"snippet"), one pass over the pixels where ONNX Runtime makes one pass per
operation. Three parts of the ONNX compose graph keep it from doing so, and
are slow on their own (one thread, 1024x768, AMD EPYC with AVX-512):

- `Log` runs in a reference loop (4.4 ms for the four). `log_by_square_roots`
  computes it from operations the JIT kernel has: five square roots bring x
  near 1, where ln(1 + t) = 2 atanh(t / (2 + t)) converges in four terms.
  (`Power` would fit too, but its kernel is slower still: 13 ms.)
- `Interpolate` on [N, C, h, w] takes 10.9 ms; on [N*C, h, w] over its last
  two axes 1.7 ms, the same bilinear samples.
- The uint8 `Concat` of the three planes on the last axis runs in a
  reference kernel (6.1 ms); a `Concat` on the channel axis followed by a
  `Transpose` to [N, H, W, 3] is fused into the snippet.

Together with compiling it with dynamic shapes tokenised (see
`openvino_runner.SNIPPETS_FOR_DYNAMIC_SHAPES`), the compose takes 6.8 ms
instead of 27.8 on OpenVINO, and ONNX Runtime's 13.1 (one run, benchmarks/README.md).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

# ln x = 2**k ln(x ** (1 / 2**k)). After k = 5 roots, x >= 0.003 (the sRGB knee, the
# smallest input the compose takes the log of) is within 0.17 of 1, and the atanh series'
# first omitted term, z**9 / 9 with |z| <= 0.09, is below 1e-10.
LOG_SQUARE_ROOTS = 5
LOG_SERIES_TERMS = 4


def adapt_for_openvino_cpu(model) -> Counter:
    """Rewrite `model` (an openvino.Model of the compose stage) in place; returns what was rewritten."""
    from openvino import Type

    rewritten: Counter = Counter()
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        if kind == "Log":
            node.output(0).replace(log_by_square_roots(node.input_value(0)).output(0))
            rewritten["Log"] += 1
        elif kind == "Interpolate" and _interpolate_over_planes(node):
            rewritten["Interpolate"] += 1
        elif kind == "Concat" and node.get_output_element_type(0) == Type.u8 and _stack_then_transpose(node):
            rewritten["Concat"] += 1
    model.validate_nodes_and_infer_types()
    return rewritten


def log_by_square_roots(value):
    """ln(value) for a positive float32 value, from Sqrt, Add, Subtract, Multiply and Divide only."""
    import openvino.opset13 as ops

    near_one = value
    for _ in range(LOG_SQUARE_ROOTS):
        near_one = ops.sqrt(near_one)
    offset = ops.subtract(near_one, _scalar(1.0))
    z = ops.divide(offset, ops.add(offset, _scalar(2.0)))
    z_squared = ops.multiply(z, z)
    # atanh(z) = z (1 + z^2/3 + z^4/5 + ...), by Horner's rule.
    series = _scalar(1.0 / (2 * LOG_SERIES_TERMS - 1))
    for term in range(LOG_SERIES_TERMS - 2, -1, -1):
        series = ops.add(ops.multiply(series, z_squared), _scalar(1.0 / (2 * term + 1)))
    return ops.multiply(ops.multiply(z, series), _scalar(2.0 * 2 ** LOG_SQUARE_ROOTS))


def _interpolate_over_planes(node) -> bool:
    """[N,C,h,w] -> [N,C,H,W] as [N*C,h,w] -> [N*C,H,W] over axes 1 and 2; needs static h and w."""
    import openvino.opset13 as ops

    data = node.input_value(0)
    shape = data.get_partial_shape()
    attributes = node.get_attributes()
    if (shape.rank.is_dynamic or shape.rank.get_length() != 4 or not shape[2].is_static
            or not shape[3].is_static or attributes.get("shape_calculation_mode") != "sizes"
            or node.get_input_size() > 2 or any(attributes.get("pads_begin", [])) or any(attributes.get("pads_end", []))):
        return False
    sizes = node.input_value(1)  # the output's [N, C, H, W]
    planes = ops.reshape(data, _int64([-1, shape[2].get_length(), shape[3].get_length()]), special_zero=False)
    height_width = ops.gather(sizes, _int64([2, 3]), _int64(0))
    resized = ops.interpolate(planes, height_width, mode=attributes["mode"], shape_calculation_mode="sizes",
                              coordinate_transformation_mode=attributes["coordinate_transformation_mode"],
                              nearest_mode=attributes["nearest_mode"], cube_coeff=attributes["cube_coeff"],
                              antialias=attributes["antialias"], axes=_int64([1, 2]))
    node.output(0).replace(ops.reshape(resized, sizes, special_zero=False).output(0))
    return True


def _stack_then_transpose(node) -> bool:
    """Concat(Unsqueeze(x_i, -1), axis=-1) on rank-4 [N,H,W,k] -> Transpose(Concat(Unsqueeze(x_i, 1), 1))."""
    import openvino.opset13 as ops

    shape = node.get_output_partial_shape(0)
    if shape.rank.is_dynamic or shape.rank.get_length() != 4 or node.get_attributes()["axis"] not in (-1, 3):
        return False
    parts = [node.input_value(index).get_node() for index in range(node.get_input_size())]
    if not all(_unsqueezes_last_axis_of_rank_3(part) for part in parts):
        return False
    planes = [ops.unsqueeze(part.input_value(0), _int64([1])) for part in parts]
    node.output(0).replace(ops.transpose(ops.concat(planes, 1), _int64([0, 2, 3, 1])).output(0))
    return True


def _unsqueezes_last_axis_of_rank_3(node) -> bool:
    if node.get_type_name() != "Unsqueeze" or node.input_value(1).get_node().get_type_name() != "Constant":
        return False
    rank = node.input_value(0).get_partial_shape().rank
    axes = node.input_value(1).get_node().get_data().reshape(-1).tolist()
    return rank.is_static and rank.get_length() == 3 and axes in ([-1], [3])


def _scalar(value: float):
    import openvino.opset13 as ops

    return ops.constant(np.array(value, np.float32))


def _int64(values):
    import openvino.opset13 as ops

    return ops.constant(np.array(values, np.int64))
