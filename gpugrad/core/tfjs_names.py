"""The one table of TensorFlow.js names: camelCase (as TF.js users write it) -> snake_case.

gpugrad's functions and methods are defined once, under their Python (snake_case) names.
Everywhere a snake_case name exists (the ``gpugrad`` module, ``Tensor``'s methods,
``tf.losses``), ``install`` binds the camelCase name to the very same object, so the two
spellings can never drift apart. tests/test_tfjs_api.py walks this table, and also checks
that every public snake_case function either has its entry here or is listed in NOT_TFJS
with the reason it has no TF.js name.
"""
from __future__ import annotations

from gpugrad.core.primitives import elementwise as elementwise_records


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)

TFJS_NAMES: dict[str, str] = {
    # creation
    "zerosLike": "zeros_like", "onesLike": "ones_like", "randomNormal": "random_normal",
    "randomUniform": "random_uniform", "range": "range_", "truncatedNormal": "truncated_normal",
    "randomStandardNormal": "random_standard_normal", "randomUniformInt": "random_uniform_int",
    # autodiff and variables
    "variableGrads": "variable_grads", "valueAndGrad": "value_and_grad",
    "valueAndGrads": "value_and_grads", "customGrad": "custom_grad",
    "disposeVariables": "dispose_variables",
    # backends
    "setBackend": "set_backend", "getBackend": "get_backend",
    # elementwise (the primitives' names are added from their records below)
    "logicalNot": "logical_not",
    "clipByValue": "clip_by_value", "squaredDifference": "squared_difference",
    "leakyRelu": "leaky_relu", "logSigmoid": "log_sigmoid", "isNaN": "is_nan",
    "isFinite": "is_finite", "isInf": "is_inf", "logicalXor": "logical_xor",
    "divNoNan": "div_no_nan", "addN": "add_n", "topk": "top_k", "batchNorm": "batch_norm",
    # reductions, movement, linear algebra
    "logSumExp": "logsumexp", "argMax": "argmax", "argMin": "argmin",
    "expandDims": "expand_dims", "broadcastTo": "broadcast_to", "matMul": "matmul",
    "outerProduct": "outer_product", "logSoftmax": "log_softmax",
    # convolution and pooling
    "conv2dTranspose": "conv2d_transpose", "depthwiseConv2d": "depthwise_conv2d",
    "maxPool": "max_pool", "avgPool": "avg_pool",
    # indexing and scans
    "oneHot": "one_hot", "gatherND": "gather_nd", "scatterND": "scatter_nd",
    "unsortedSegmentSum": "unsorted_segment_sum",
    # tensor methods that exist only as methods
    "asType": "cast", "dataSync": "data_sync", "arraySync": "array_sync",
    "toString": "to_string", "isDisposed": "is_disposed",
    # tf.losses
    "meanSquaredError": "mean_squared_error", "softmaxCrossEntropy": "softmax_cross_entropy",
    "sigmoidCrossEntropy": "sigmoid_cross_entropy", "logLoss": "log_loss",
    "huberLoss": "huber_loss", "absoluteDifference": "absolute_difference",
    "hingeLoss": "hinge_loss", "cosineDistance": "cosine_distance",
    "computeWeightedLoss": "compute_weighted_loss",
}

# Every public primitive under its TF.js name: the camelCase of its own, unless its record says.
TFJS_NAMES.update({p.tfjs or camel_case(p.name): p.name for p in elementwise_records()
                   if p.public and (p.tfjs or "_" in p.name)})

# TF.js has these only as Tensor methods: never bound at module level.
METHOD_ONLY = frozenset({"asType", "dataSync", "arraySync", "toString", "isDisposed"})

# Public snake_case functions that TF.js has no name for (so they get no camelCase alias).
NOT_TFJS: dict[str, str] = {
    "from_dlpack": "TF.js has no DLPack interop",
    "stop_gradient": "TF.js has no stopGradient (gpugrad extra, as in JAX)",
    "broadcast_shapes": "a helper of gpugrad's op layer, not TF.js API",
    "normalize_axes": "a helper of gpugrad's op layer, not TF.js API",
    "shape_arg": "a helper of gpugrad's op layer (shape validation), not TF.js API",
    "axis_arg": "a helper of gpugrad's op layer (axis validation), not TF.js API",
    "count_arg": "a helper of gpugrad's op layer (count validation), not TF.js API",
    "shape_str": "a helper that formats shapes as TF.js messages do",
    "data_buffer": "the backend array itself (numpy or CuPy); TF.js keeps its buffers internal",
    "clear_caches": "gpugrad's plan and kernel caches have no TF.js counterpart",
    "clip_by_global_norm": "TF.js has no clipByGlobalNorm (TF Python's tf.clip_by_global_norm)",
    "debug_nans": "TF.js has no NaN debugging switch (JAX's jax_debug_nans)",
    "layer_norm": "TF.js has no layer-norm op (only the layer tf.layers.layerNormalization)",
}


def install(namespace, names: dict[str, str] = TFJS_NAMES) -> list[str]:
    """Bind each camelCase name to the object its snake_case name holds in namespace (a
    module's globals() dict, a class or any object with attributes). Returns the camelCase
    names bound; entries whose snake_case name is absent there are skipped."""
    bound = []
    for camel, snake in names.items():
        if isinstance(namespace, dict):
            if camel not in METHOD_ONLY and snake in namespace:
                namespace[camel] = namespace[snake]
                bound.append(camel)
            continue
        if camel in METHOD_ONLY and not isinstance(namespace, type):
            continue
        value = _raw_attr(namespace, snake)
        if value is not _MISSING:
            setattr(namespace, camel, value)
            bound.append(camel)
    return bound


_MISSING = object()


def _raw_attr(namespace, name: str):
    """The attribute as stored: for a class, a property stays the property (getattr on the
    class would give the same object for functions, but this keeps descriptors intact)."""
    if isinstance(namespace, type):
        for klass in namespace.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
        return _MISSING
    return getattr(namespace, name, _MISSING)
