"""The CPU inference path of a ConvNeXt block's MLP: two oneDNN matrix products with fused epilogues.

Eager PyTorch runs ``Linear -> GELU -> Linear -> * gamma -> + x`` as five passes over the (N, H, W, 4C) and
(N, H, W, C) activations: ``addmm`` first copies the bias into its output, then GELU, the layer-scale product and the
residual sum each read and write the whole map. Here the first product applies bias and GELU in its epilogue
(``mkldnn._linear_pointwise``), and the second one, with the layer scale folded into its weight and bias
(``(y W^T + b) * g = y (g W)^T + g b``), adds the residual in its epilogue (``mkldnn._linear_pointwise.binary``):
two passes instead of five. The same ops are what inductor emits for these patterns on CPU.

It runs only where nothing needs a gradient, on CPU, in eager mode, for float32 and bfloat16 (bfloat16 also under
autocast, where it computes the products and GELU in bfloat16 as autocast would), and only on channels-last maps so
that the residual is a contiguous NHWC view. Elsewhere (training, export, ``torch.compile``, GPU) the block runs
its plain ops. The folded weights are cached per dtype and rebuilt when a parameter changes (its version counter).
Numerics: float32 agrees with the plain ops to about 1e-6 (the fold reorders one product); bfloat16 is stated and
tested against float32 in ``tests/test_backbone.py``.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

FUSED_DTYPES = (torch.float32, torch.bfloat16)


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the block's products run in: autocast's CPU dtype when autocast is on, else the input's."""
    if torch.is_autocast_enabled('cpu'):
        return torch.get_autocast_dtype('cpu')
    return x.dtype


def applies(x: Tensor, block: nn.Module) -> bool:
    """Whether the fused path can run for block input ``x`` (an NCHW map)."""
    # First: under torch.compile this folds to False before anything dynamo cannot trace (mkldnn queries) breaks
    # the graph at every block.
    if torch.compiler.is_compiling() or torch.jit.is_scripting() or torch.jit.is_tracing():
        return False
    if torch.onnx.is_in_onnx_export():
        return False
    if torch.is_grad_enabled() and (x.requires_grad or block.pwconv1.weight.requires_grad):
        return False
    if block.training and block.drop_path.drop_prob > 0:
        return False
    if x.device.type != 'cpu' or not torch.backends.mkldnn.is_available():
        return False
    dtype = compute_dtype(x)
    if dtype not in FUSED_DTYPES or (dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return False
    return x.permute(0, 2, 3, 1).is_contiguous()  # channels-last block input: NHWC residual without a copy


class FusedMLPWeights:
    """The MLP's weights as the fused ops take them, per dtype: layer scale folded into the second product, both
    prepacked into oneDNN's blocked layout (which skips a reorder of each weight in every call).

    Not part of the state dict; a copy of the module (``copy.deepcopy``, pickling) starts with an empty cache.
    """

    def __init__(self) -> None:
        self._key: Optional[tuple] = None
        self._weights: Optional[Tuple[Tensor, Tensor, Tensor, Tensor]] = None

    def __deepcopy__(self, memo: dict) -> 'FusedMLPWeights':
        return FusedMLPWeights()

    def __getstate__(self) -> dict:
        return {'_key': None, '_weights': None}

    def get(self, block: nn.Module, dtype: torch.dtype, rows: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W1, b1, gamma * W2, gamma * b2) of ``block`` in ``dtype``, packed for about ``rows`` input rows."""
        fc1, fc2, gamma = block.pwconv1, block.pwconv2, block.gamma
        params = [fc1.weight, fc1.bias, fc2.weight, fc2.bias] + ([gamma] if gamma is not None else [])
        key = (dtype,) + tuple((p.data_ptr(), p._version) for p in params)
        if key != self._key:
            with torch.no_grad():
                w2, b2 = fc2.weight, fc2.bias
                if gamma is not None:
                    w2, b2 = w2 * gamma[:, None], b2 * gamma
                w1, b1, w2, b2 = (t.to(dtype).contiguous() for t in (fc1.weight, fc1.bias, w2, b2))
                pack = torch.ops.mkldnn._reorder_linear_weight
                self._weights = (pack(w1, rows), b1, pack(w2, rows), b2)
            self._key = key
        return self._weights


def block_mlp(block: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """x + gamma * pwconv2([GRN](GELU(pwconv1(LayerNorm(y))))) for block input ``x`` (NCHW, channels-last) and its
    depthwise-convolved NHWC view ``y``; returns an NCHW map with channels-last strides."""
    dtype = compute_dtype(x)
    w1, b1, w2, b2 = block._fused_weights.get(block, dtype, y.shape[0] * y.shape[1] * y.shape[2])
    norm = block.norm
    with torch.autocast('cpu', enabled=False):  # a bfloat16 map with float32 norm parameters: no cast, faster
        y = torch.nn.functional.layer_norm(y.to(dtype), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        y = torch.ops.mkldnn._linear_pointwise(y, w1, b1, 'gelu', [], 'none')
        if block.grn is not None:
            y = block.grn(y).to(dtype)
        residual = x.permute(0, 2, 3, 1).to(dtype)  # (N, H, W, C), a view
        out = torch.ops.mkldnn._linear_pointwise.binary(y, residual, w2, b2, 'add')
    return out.permute(0, 3, 1, 2)  # (N, C, H, W) with channels-last strides
