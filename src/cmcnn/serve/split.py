"""A cmc network's ONNX graph cut in two: NumPy preprocessing, onnxruntime for the rest.

Used by :class:`cmcnn.serve.predictor.Predictor` (the asinh scaling is ~150x faster in
NumPy than in onnxruntime's scalar ``Asinh``) and by the mask scan
(:mod:`cmcnn.interpret.maskscan`), which splits the same graph further.
"""
from __future__ import annotations

import numpy as np


def node_attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Unsupported(Exception):
    """An operator the NumPy evaluator of the preprocessing does not implement."""


def _np_slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(st), int(en), int(sp))
    return x[tuple(index)]


def _np_reshape(x, shape):
    shape = [x.shape[i] if int(v) == 0 else int(v) for i, v in enumerate(shape)]
    return x.reshape(shape)


#: Operators of :class:`NumpyGraph`: elementwise maps and layout changes.
_NP_OPS = {
    "Mul": lambda x, y, **a: np.multiply(x, y),
    "Div": lambda x, y, **a: np.divide(x, y),
    "Add": lambda x, y, **a: np.add(x, y),
    "Sub": lambda x, y, **a: np.subtract(x, y),
    "Asinh": lambda x, **a: np.arcsinh(x),
    "Log": lambda x, **a: np.log(x),
    "Exp": lambda x, **a: np.exp(x),
    "Sqrt": lambda x, **a: np.sqrt(x),
    "Abs": lambda x, **a: np.abs(x),
    "Neg": lambda x, **a: np.negative(x),
    "Identity": lambda x, **a: x,
    "Transpose": lambda x, perm=None, **a: np.transpose(x, perm),
    "Reshape": lambda x, shape, **a: _np_reshape(x, shape),
    "Slice": lambda x, *args, **a: _np_slice(x, *args),
    "Squeeze": lambda x, axes=None, **a: np.squeeze(x, axis=None if axes is None else tuple(int(v) for v in axes)),
    "Unsqueeze": lambda x, axes, **a: np.expand_dims(x, tuple(int(v) for v in axes)),
}


class NumpyGraph:
    """Evaluates a small ONNX graph of elementwise and layout operators with NumPy.

    onnxruntime's ``Asinh`` is scalar code (~150 ns a value on the development
    machine), NumPy's is vectorised (~1 ns); the asinh scaling dominated the cost of a
    whole forward pass.  Raises :class:`Unsupported` on loading for other operators.
    """

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        g = model.graph
        self.values = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.nodes = []
        for n in g.node:
            if n.op_type == "Constant":
                self.values[n.output[0]] = numpy_helper.to_array(node_attributes(n)["value"])
                continue
            if n.op_type not in _NP_OPS:
                raise Unsupported(n.op_type)
            self.nodes.append((n.op_type, list(n.input), n.output[0], node_attributes(n)))
        self.inputs = [i.name for i in g.input if i.name not in self.values]
        self.outputs = [o.name for o in g.output]

    def run(self, _names, feeds: dict) -> list[np.ndarray]:
        env = dict(self.values)
        env.update(feeds)
        for op, ins, out, attrs in self.nodes:
            args = [env[i] if i else None for i in ins]
            while args and args[-1] is None:
                args.pop()
            y = _NP_OPS[op](*args, **attrs)
            env[out] = y.astype(np.float32, copy=False) if y.dtype == np.float64 else y
        return [np.ascontiguousarray(env[o]) for o in self.outputs]

class SplitNetwork:
    """A cmc network run as NumPy preprocessing followed by onnxruntime for the rest.

    The graph is cut at the inputs of the first convolution of every feature stack:
    the part before (asinh scaling, channel slicing, layout) is evaluated by
    :class:`NumpyGraph`, the rest — with the ``redshift`` input of a redshift-aware
    network — by an onnxruntime session.  Only graphs whose preprocessing uses the
    operators NumPy evaluates here are accepted (:class:`Unsupported` otherwise).

    Parameters
    ----------
    model : onnx.ModelProto
        The whole network (``cmc export``).
    session_factory : callable
        ``session_factory(model_bytes)`` → an onnxruntime session for the rest.
    """

    def __init__(self, model, session_factory) -> None:
        import onnx

        g = model.graph
        inits = {t.name for t in g.initializer}
        inputs = [i.name for i in g.input if i.name not in inits]
        if not 1 <= len(inputs) <= 2 or not 1 <= len(g.output) <= 2:
            raise Unsupported("not one image input (and a redshift) and one or two outputs")
        self.input_name, self.extra_inputs = inputs[0], inputs[1:]
        self.outputs = [o.name for o in g.output]
        producer = {o: n for n in g.node for o in n.output}
        cuts = [n.input[0] for n in g.node if n.op_type == "Conv"
                and (n.input[0] not in producer or producer[n.input[0]].op_type != "AveragePool")]
        if not cuts or self.input_name in cuts:
            raise Unsupported("no preprocessing before the convolutions")
        known = {v.name for v in list(g.value_info) + list(g.input) + list(g.output)}
        # the cut tensors keep their inferred shapes (batch, C, H, W): with an unknown rank,
        # onnxruntime cannot keep the whole stack in its blocked NCHWc layout and reorders the
        # activations around every pooling (a third of the CPU time of a forward pass)
        try:
            inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
        except Exception:  # noqa: BLE001 - shape inference is an optimisation only
            inferred = {}
        for name in cuts:
            if name not in known:
                g.value_info.append(inferred.get(name)
                                    or onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        extractor = onnx.utils.Extractor(model)
        self.pre = NumpyGraph(extractor.extract_model([self.input_name], cuts))
        self.cuts = list(self.pre.outputs)
        body = extractor.extract_model(self.cuts + self.extra_inputs, self.outputs)
        self.body = session_factory(body.SerializeToString())

    def run(self, images: np.ndarray, redshift: np.ndarray | None = None,
            outputs: list[str] | None = None) -> list[np.ndarray]:
        """The network's outputs (all, or those named) for a batch of images (float32, the model's
        input layout) and, for a redshift-aware network, their redshifts (float32, (batch,))."""
        feeds = dict(zip(self.cuts, self.pre.run(None, {self.input_name: images})))
        if self.extra_inputs:
            feeds[self.extra_inputs[0]] = redshift
        return self.body.run(outputs, feeds)
