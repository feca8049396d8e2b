"""What each roadmap step's backbone computes, op by op, against what its design record says the step does.

``test_roadmap.py`` checks what the steps return (shapes, FLOPs) and that the two ends are the real models; here every
step of both regimes runs on the meta device under a dispatch mode that records each operation PyTorch executes
(convolutions with their kernel, stride and groups; BatchNorm or LayerNorm; ReLU or GELU; the layer scale; the sum)
and which operation's output it reads. Each block's data flow, the residual branch, the shortcut and what follows
their sum, and the ops of the stem and between the stages, are compared with expectations written from the fields
of ``design(step, regime)`` alone, as the paper's Section 2 describes them. A block that builds a GELU but calls
ReLU, or that normalises or activates in the wrong place, shows up here however its modules are named.
"""
from typing import Dict, List, Optional, Tuple

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from convnext_dense import ROADMAP_STEPS, ConvNeXtRoadmap
from convnext_dense.specs.roadmap import REGIMES, Design, design

Op = Tuple[object, ...]  # ('conv', in, out, kernel, stride, groups, bias), ('pointwise', in, out, bias), ('bn', C), ...
Block = Tuple[List[List[Op]], List[Op]]  # (the two paths into the sum, sorted; the ops after the sum)
SIZE = 64  # the input's height and width: stage 3 at 2 x 2


def conv(cin: int, cout: int, kernel: int, stride: int, groups: int, bias: bool) -> Op:
    """A convolution; 1 x 1 with stride 1 as ``pointwise``, the same op as a Linear on the channels."""
    if kernel == 1 and stride == 1 and groups == 1:
        return ('pointwise', cin, cout, bias)
    return ('conv', cin, cout, kernel, stride, groups, bias)


class Node:
    """The op that produced a tensor, and the nodes of the tensors it read ('x': a block's input)."""

    def __init__(self, op: Op, parents: Tuple['Node', ...] = ()) -> None:
        self.op, self.parents = op, parents


class Trace(TorchDispatchMode):
    """Records the ops a forward runs: each output tensor's ``Node``; ops outside the blocks in order (``outside``,
    'block' where a block ran), each block's data flow (``blocks``). Views, copies and permutes pass their input's
    node on; tensors without one are parameters and constants."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.nodes: Dict[int, Node] = {}
        self.keep: List[Tensor] = []  # alive, so that no id is reused
        self.outside: List[Op] = []
        self.blocks: List[Block] = []
        self.in_block = False
        stages = model.stages if model.design.separate_downsampling else [
            getattr(model, f'layer{i + 1}') for i in range(len(model.design.depths))]
        self.block_modules = [block for stage in stages for block in stage]
        self.hooks: list = []

    def __enter__(self) -> 'Trace':
        for block in self.block_modules:
            self.hooks += [block.register_forward_pre_hook(self._enter), block.register_forward_hook(self._leave)]
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        for hook in self.hooks:
            hook.remove()
        super().__exit__(*exc)

    def _enter(self, module: nn.Module, args: Tuple[Tensor]) -> None:
        self.nodes[id(args[0])] = Node(('x',))
        self.in_block = True
        self.outside.append(('block',))

    def _leave(self, module: nn.Module, args: Tuple[Tensor], out: Tensor) -> None:
        self.in_block = False
        node, after = self.nodes[id(out)], []
        while node.op[0] not in ('add', 'x'):
            after.insert(0, node.op)
            node = node.parents[0]
        paths = sorted(path(parent) for parent in node.parents) if node.op[0] == 'add' else [path(node), []]
        self.blocks.append((paths, after))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [a for a in args if isinstance(a, Tensor)]
        read = [self.nodes[id(t)] for t in tensors if id(t) in self.nodes]
        op = describe(func.overloadpacket.__name__, args)
        node = Node(op, tuple(read)) if op else (read[0] if read else None)
        if op == ('scale',) and len(read) != 1:
            node = Node(('mul',), tuple(read))  # a product of two activations is no layer scale
        first = out[0] if isinstance(out, (tuple, list)) else out  # the normalised map of a norm's (out, mean, rstd)
        if node is not None and isinstance(first, Tensor):
            self.nodes[id(first)] = node
            self.keep.append(first)
        if op and not self.in_block:
            self.outside.append(op)
        self.keep += [t for t in tree_leaves(out) if isinstance(t, Tensor)]
        return out


def describe(name: str, args: tuple) -> Optional[Op]:
    """The op of an aten call that changes values, or None for one that moves them (views, permutes, copies)."""
    if name == 'convolution':
        x, weight, bias, stride, _, _, _, _, groups = args
        return conv(x.shape[1], weight.shape[0], weight.shape[-1], stride[0], groups, bias is not None)
    if name == 'addmm':  # a Linear on (N * H * W, C): bias, input, weight transposed
        return ('pointwise', args[1].shape[1], args[2].shape[1], True)
    if name in ('native_batch_norm', '_native_batch_norm_legit_no_training'):
        return ('bn', args[0].shape[1])
    if name == 'native_layer_norm':
        return ('ln', args[1][-1])
    if name in ('relu', 'relu_', 'gelu', 'gelu_'):
        return (name.rstrip('_'),)
    if name in ('add', 'add_'):
        return ('add',)
    if name in ('mul', 'mul_'):
        return ('scale',)
    if name == 'max_pool2d_with_indices':
        return ('maxpool', args[1][0], args[2][0])
    return None


def path(node: Node) -> List[Op]:
    """The ops from a block's input to ``node``, in order (a join on the way ends it with 'add')."""
    ops = []
    while node.op != ('x',):
        ops.insert(0, node.op)
        if node.op[0] == 'add':
            break
        node = node.parents[0]
    return ops


# What the paper's steps make of a block and of the layers around the blocks, from the design's fields only.
def expected_block(d: Design, stage: int, cin: int, stride: int) -> Block:
    """A block's two paths into the sum and the ops after it.

    ResNet's bottleneck: 1x1 down to the stage's width, kxk (depthwise: groups = channels), 1x1 up to 4x; inverted:
    the middle 4x the stage's width, the output the stage's width; moved up: the depthwise kxk first, on the block's
    input channels. A norm after each convolution, or (fewer norms) after the depthwise one only; the activation
    after the first two norms and after the sum, or (fewer activations) between the two 1x1 layers only. The
    layer scale ends the branch once it ends in no norm. The shortcut: x, or a 1x1 convolution (stride of the block)
    and a norm where stride or width change.
    """
    planes = d.width * 2**stage
    out, hidden = (planes, 4 * planes) if d.inverted else (4 * planes, planes)
    norm, act = ('ln' if d.layer_norm else 'bn'), ('gelu' if d.gelu else 'relu')
    if d.moved_up:
        assert d.depthwise
        convs = [(cin, cin, d.kernel, stride, cin), (cin, hidden, 1, 1, 1), (hidden, out, 1, 1, 1)]
    else:
        convs = [(cin, hidden, 1, 1, 1), (hidden, hidden, d.kernel, stride, hidden if d.depthwise else 1),
                 (hidden, out, 1, 1, 1)]
    if d.fewer_norms or d.fewer_activations:
        assert d.moved_up  # the order of the paper's steps: the depthwise convolution is first
    branch: List[Op] = []
    for i, (a, b, k, s, g) in enumerate(convs):
        normed = i == 0 or not d.fewer_norms
        # no bias before a norm; ConvNeXt's own depthwise convolution has one
        branch.append(conv(a, b, k, s, g, bias=not normed or d.separate_downsampling))
        if normed:
            branch.append((norm, b))
        if i == 1 or (i == 0 and not d.fewer_activations):
            branch.append((act,))
    if d.fewer_norms:
        branch.append(('scale',))
    shortcut: List[Op] = []
    if stride != 1 or cin != out:
        shortcut = [conv(cin, out, 1, stride, 1, bias=False), (norm, out)]
    return sorted([branch, shortcut]), [] if d.fewer_activations else [(act,)]


def expected_model(d: Design) -> Tuple[List[Op], List[Block]]:
    """The ops outside the blocks in order ('block' for each block), and each block's data flow.

    The stem: ResNet's 7x7 stride-2 convolution, BN, ReLU, 3x3 stride-2 max pool, or (patchify) a 4x4 stride-4
    convolution. Before separate downsampling the first block of stages 1..3 strides; from it on, a LayerNorm after
    the stem, LayerNorm + 2x2 stride-2 convolution between the stages, and a LayerNorm on each returned map.
    """
    channels = [d.width * 2**i * (1 if d.inverted else 4) for i in range(len(d.depths))]
    separate = d.separate_downsampling
    if d.patchify:
        outside: List[Op] = [conv(3, d.width, 4, 4, 1, bias=True)] + ([('ln', d.width)] if separate else [])
    else:
        outside = [conv(3, d.width, 7, 2, 1, bias=False), ('bn', d.width), ('gelu' if d.gelu else 'relu',),
                   ('maxpool', 3, 2)]
    blocks, cin = [], d.width
    for i, depth in enumerate(d.depths):
        if separate and i > 0:
            outside += [('ln', cin), conv(cin, channels[i], 2, 2, 1, bias=True)]
            cin = channels[i]
        for j in range(depth):
            blocks.append(expected_block(d, i, cin, 2 if i > 0 and j == 0 and not separate else 1))
            outside.append(('block',))
            cin = channels[i]
        if separate:
            outside.append(('ln', cin))
    return outside, blocks


@pytest.mark.parametrize('regime, step', [(r, s) for r in REGIMES for s in ROADMAP_STEPS])
def test_each_block_computes_what_the_steps_design_says(regime, step):
    d = design(step, regime)
    with torch.device('meta'):
        model = ConvNeXtRoadmap(step, regime).eval()
    with torch.no_grad(), Trace(model) as trace:
        model(torch.empty(1, 3, SIZE, SIZE, device='meta'))
    outside, blocks = expected_model(d)
    assert trace.outside == outside
    assert len(trace.blocks) == len(blocks) == sum(d.depths)
    where = [(i, j) for i, depth in enumerate(d.depths) for j in range(depth)]
    for (i, j), got, want in zip(where, trace.blocks, blocks):
        assert got == want, f'stage {i} block {j}: runs {got}, the design says {want}'
    # built as called: the step's activation (ResNet's stem has its ReLU) and norm modules only
    acts = {type(m) for m in model.modules() if isinstance(m, (nn.ReLU, nn.GELU))}
    assert acts == {nn.GELU if d.gelu else nn.ReLU} | (set() if d.patchify else {nn.ReLU})
    norms = {type(m) for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm))}
    assert norms and all(issubclass(t, nn.LayerNorm if d.layer_norm else nn.BatchNorm2d) for t in norms)


def test_expected_blocks_written_out():
    """What ``expected_block`` makes of three steps' designs, spelled out (ResNet-50 regime, stage 1's first block):
    ResNet's bottleneck; the GELU step's inverted, moved-up depthwise block with its strided projection shortcut;
    ConvNeXt's block."""
    def first_of_stage_1(step: str, cin: int) -> Block:
        return expected_block(design(step), 1, cin, 1 if step == 'separate_downsampling' else 2)
    bn, relu, gelu = ('bn', 128), ('relu',), ('gelu',)
    assert first_of_stage_1('resnet', 256) == (sorted([
        [('pointwise', 256, 128, False), bn, relu, ('conv', 128, 128, 3, 2, 1, False), bn, relu,
         ('pointwise', 128, 512, False), ('bn', 512)],
        [('conv', 256, 512, 1, 2, 1, False), ('bn', 512)]]), [relu])
    assert first_of_stage_1('gelu', 96) == (sorted([
        [('conv', 96, 96, 7, 2, 96, False), ('bn', 96), gelu, ('pointwise', 96, 768, False), ('bn', 768), gelu,
         ('pointwise', 768, 192, False), ('bn', 192)],
        [('conv', 96, 192, 1, 2, 1, False), ('bn', 192)]]), [gelu])
    assert first_of_stage_1('separate_downsampling', 192) == (sorted([
        [('conv', 192, 192, 7, 1, 192, True), ('ln', 192), ('pointwise', 192, 768, True), gelu,
         ('pointwise', 768, 192, True), ('scale',)], []]), [])
