"""The packed model: P MLPs with different genotypes as one batched module (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual torch alias

from workflow.records import Candidate
from workflow.trainer.model import ACTIVATIONS, Architecture, build_mlp

Activation = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Layer:
    """How hidden layer ``l`` is computed: for the first ``count`` members (those deeper than ``l``)."""

    count: int
    #: (members, activation) over consecutive members sharing an activation.
    runs: tuple[tuple[int, Activation], ...]
    #: Whether some member here has dropout > 0 / an activation with act(0) != 0 and padded units.
    has_dropout: bool
    needs_mask: bool

    @property
    def sizes(self) -> list[int]:
        return [n for n, _ in self.runs]


class PackedMLP(nn.Module):
    """P MLPs (:func:`~workflow.trainer.model.build_mlp` layouts, any widths per layer) as one batched model.

    Members are stored in an internal order (deepest first, then by activation name, then as given);
    ``order[i]`` is the caller's index of internal member ``i`` and ``position[k]`` the internal index of
    the caller's member ``k``. :meth:`forward` and :meth:`losses` work in the internal order;
    :meth:`to_caller` maps a per-member vector back, :meth:`member` unpacks one member as an
    ``nn.Sequential``.

    Parameters: ``weights[l]`` is ``(count_l, fan_in, H)`` (``fan_in`` is the input size for ``l = 0``,
    else ``H``; ``H`` the widest layer of any member), ``biases[l]`` is ``(count_l, 1, H)``, ``out_weight``
    ``(P, H, n_outputs)`` and ``out_bias`` ``(P, 1, n_outputs)``; a member's real block is the top-left corner
    (its own width at that layer, and the previous layer's as fan-in), the rest is zero.
    """

    keep: torch.Tensor  # (P, 1, 1): each member's keep probability 1 - dropout

    def __init__(self, archs: Sequence[Architecture], n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        if not archs:
            raise ValueError("a pack needs at least one member")
        for arch in archs:
            build_mlp(arch, 1, 1)  # the same validation (activation name, sizes, dropout range) as alone
            if arch.depth < 1:
                raise ValueError(f"the packed engine needs at least one hidden layer, got {list(arch.widths)}")
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.order: list[int] = sorted(range(len(archs)), key=lambda k: (-archs[k].depth, archs[k].activation, k))
        self.position: list[int] = [0] * len(archs)
        for i, k in enumerate(self.order):
            self.position[k] = i
        self.archs: list[Architecture] = [archs[k] for k in self.order]
        self.width = max(w for arch in self.archs for w in arch.widths)
        self.depth = max(arch.depth for arch in self.archs)
        size, width = self.size, self.width
        counts = [sum(arch.depth > layer for arch in self.archs) for layer in range(self.depth)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(count, n_inputs if layer == 0 else width, width))
            for layer, count in enumerate(counts))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(count, 1, width)) for count in counts)
        self.out_weight = nn.Parameter(torch.zeros(size, width, n_outputs))
        self.out_bias = nn.Parameter(torch.zeros(size, 1, n_outputs))

        functions = {arch.activation: ACTIVATIONS[arch.activation]().forward for arch in self.archs}
        nonzero_at_zero = {name: bool(fn(torch.zeros(1)).item() != 0) for name, fn in functions.items()}
        keep = torch.tensor([1.0 - arch.dropout for arch in self.archs]).view(size, 1, 1)
        self.register_buffer("keep", keep.clone(), persistent=False)
        layers = []
        for layer, count in enumerate(counts):
            members = self.archs[:count]
            # 1 on each member's real units at this layer, 0 on its padding; and mask / keep, dropout's scale.
            mask = torch.zeros(count, 1, width)
            for i, arch in enumerate(members):
                mask[i, 0, : arch.widths[layer]] = 1.0
            self.register_buffer(f"mask{layer}", mask, persistent=False)
            self.register_buffer(f"scale{layer}", mask / keep[:count], persistent=False)
            runs: list[tuple[int, Activation]] = []
            for i, arch in enumerate(members):
                if i and members[i - 1].activation == arch.activation:
                    runs[-1] = (runs[-1][0] + 1, runs[-1][1])
                else:
                    runs.append((1, functions[arch.activation]))
            layers.append(_Layer(
                count=count, runs=tuple(runs),
                has_dropout=any(arch.dropout > 0 for arch in members),
                needs_mask=any(nonzero_at_zero[arch.activation] and arch.widths[layer] < width for arch in members)))
        self._layers: tuple[_Layer, ...] = tuple(layers)

    def mask(self, layer: int) -> torch.Tensor:
        """``(count_l, 1, H)``: 1 on the real units of layer ``layer``'s members, 0 on their padding."""
        return getattr(self, f"mask{layer}")

    def scale(self, layer: int) -> torch.Tensor:
        """``mask(layer) / keep``: the dropout scale of kept units."""
        return getattr(self, f"scale{layer}")

    @property
    def size(self) -> int:
        return len(self.archs)

    # --- building and unpacking
    @classmethod
    def from_modules(cls, nets: Sequence[nn.Sequential], archs: Sequence[Architecture], n_inputs: int,
                     n_outputs: int) -> PackedMLP:
        """A pack whose members start from the weights of ``nets`` (``build_mlp`` layouts, caller order)."""
        if len(nets) != len(archs):
            raise ValueError(f"{len(nets)} modules for {len(archs)} architectures")
        packed = cls(archs, n_inputs, n_outputs)
        with torch.no_grad():
            for k, net in enumerate(nets):
                for tensor, source in zip(packed._member_views(packed.position[k]), _sequential_tensors(net)):
                    if tensor.shape != source.shape:
                        raise ValueError(f"module {k} does not match its architecture {archs[k]}: "
                                         f"{tuple(source.shape)} where {tuple(tensor.shape)} was expected")
                    tensor.copy_(source)
        return packed

    @classmethod
    def initial(cls, candidates: Sequence[Candidate], n_inputs: int, n_outputs: int) -> PackedMLP:
        """A pack whose members start exactly as the Lightning engine starts each candidate alone.

        ``train_one`` seeds torch's global generator with the candidate's seed, then builds the MLP; so does
        this (for each member in turn), restoring the global generator's state afterwards.
        """
        nets = []
        archs = [Architecture.of(c.hparams) for c in candidates]
        with torch.random.fork_rng(devices=[]):
            for candidate, arch in zip(candidates, archs):
                torch.manual_seed(candidate.seed % 2**32)
                nets.append(build_mlp(arch, n_inputs, n_outputs))
        return cls.from_modules(nets, archs, n_inputs, n_outputs)

    def member(self, k: int) -> nn.Sequential:
        """A copy of the caller's member ``k`` as a standalone ``build_mlp`` module (on the CPU)."""
        i = self.position[k]
        net = build_mlp(self.archs[i], self.n_inputs, self.n_outputs)
        with torch.no_grad():
            for target, view in zip(_sequential_tensors(net), self._member_views(i)):
                target.copy_(view.detach().cpu())
        return net

    def _member_views(self, i: int) -> Iterator[torch.Tensor]:
        """Views of internal member ``i``'s real blocks, in ``_sequential_tensors`` order (W as in x @ W)."""
        fan_in = self.n_inputs
        for layer, h in enumerate(self.archs[i].widths):
            yield self.weights[layer][i, :fan_in, :h]
            yield self.biases[layer][i, 0, :h]
            fan_in = h
        yield self.out_weight[i, :fan_in, :]
        yield self.out_bias[i, 0, :]

    # --- computing
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                dropout: bool = False) -> torch.Tensor:
        """Outputs ``(P, B, n_outputs)`` (internal order) for one shared batch ``x`` ``(B, n_inputs)``."""
        pieces: list[torch.Tensor] = []
        h = x
        for layer, plan in enumerate(self._layers):
            weight, bias = self.weights[layer], self.biases[layer]
            if layer == 0:
                z = torch.baddbmm(bias, x.expand(plan.count, *x.shape), weight)
            else:
                if plan.count < h.shape[0]:
                    # Members whose last layer was the previous one: their final hidden state. (split, not
                    # slicing: its backward is one cat instead of a zero-filled full-size tensor per slice)
                    h, done = h.split([plan.count, h.shape[0] - plan.count])
                    pieces.append(done)
                z = torch.baddbmm(bias, h, weight)
            if len(plan.runs) == 1:
                h = plan.runs[0][1](z)
            else:
                h = torch.cat([fn(part) for part, (_, fn) in zip(z.split(plan.sizes), plan.runs)])
            if dropout and plan.has_dropout:
                # u < keep is Bernoulli(keep) (always 1 for p = 0, as u < 1); one uniform draw per unit is
                # about half the price of torch.bernoulli with per-member probabilities on the CPU. In place
                # on the float draw: no bool tensor and no dtype conversion.
                mask = torch.rand(h.shape, generator=generator, device=h.device)
                h = h * mask.lt_(self.keep[: plan.count]).mul_(self.scale(layer))
            elif plan.needs_mask:
                h = h * self.mask(layer)
        if pieces:
            pieces.append(h)
            h = torch.cat(pieces[::-1])
        return torch.baddbmm(self.out_bias, h, self.out_weight)

    def sample_losses(self, out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
        """Per-member, per-sample losses ``(P, B)``: squared error (mean over outputs) or cross-entropy."""
        if kind == "regression":
            return (out - y).square().mean(dim=2)
        return F.cross_entropy(out.transpose(1, 2), y.expand(out.shape[0], -1), reduction="none")

    def losses(self, out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
        """Each member's mean loss over the batch ``(P,)``: what ``F.mse_loss``/``F.cross_entropy`` give alone."""
        if kind == "regression":
            return (out - y).square().mean(dim=(1, 2))
        return self.sample_losses(out, y, kind).mean(dim=1)

    def to_caller(self, values: torch.Tensor) -> torch.Tensor:
        """A per-member tensor (first dimension in internal order) in the caller's order."""
        return values[self.position]

    def select(self, keep: Sequence[int]) -> tuple[PackedMLP, Callable[[torch.Tensor, str], torch.Tensor]]:
        """A smaller pack of the caller's members ``keep`` (ascending), with their current weights.

        Also returns ``transfer(tensor, name)``: the part of a tensor shaped like this pack's parameter
        ``name`` (e.g. Adam's moments for it) that belongs to the smaller pack's parameter of that name.
        Exact: only other members and all-zero padding are dropped (the new width and depth are the
        remaining members' maxima, so the smaller pack may lack some of this pack's parameters).
        """
        keep = sorted(keep)
        small = PackedMLP([self.archs[self.position[k]] for k in keep], self.n_inputs, self.n_outputs)
        # This pack's internal rows of the kept members, in the small pack's internal order.
        rows = torch.tensor([self.position[keep[k]] for k in small.order], device=self.out_bias.device)
        shapes = {name: tuple(p.shape) for name, p in small.named_parameters()}

        def transfer(tensor: torch.Tensor, name: str) -> torch.Tensor:
            count, d1, d2 = shapes[name]
            return tensor[rows[:count]][:, :d1, :d2].contiguous()

        small.to(self.out_bias.device)
        mine = dict(self.named_parameters())
        with torch.no_grad():
            for name, target in small.named_parameters():
                target.copy_(transfer(mine[name], name))
        return small, transfer


def _sequential_tensors(net: nn.Sequential) -> Iterator[torch.Tensor]:
    """A ``build_mlp`` module's weights (transposed: x @ W) and biases, layer by layer, output last."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for linear in linears:
        yield linear.weight.T
        yield linear.bias
