"""The packed engine's optimizer: one Adam over the whole pack, a fast path for its step, and shrinking it.

Adam is elementwise, so each member's moments and updates are its own: dropping finished members from the
pack (:func:`select_members`) keeps training the others exactly as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from workflow.trainer.common import Settings
from workflow.trainer.common import make_optimizer as common_make_optimizer
from workflow.trainer.packed.model import PackedMLP


def make_optimizer(model: nn.Module, settings: Settings, *, capturable: bool = False) -> torch.optim.Optimizer:
    """The optimizer as the Lightning engine configures it (:func:`~workflow.trainer.common.make_optimizer`),
    over the whole pack (every member of a pack trains with the same settings)."""
    return common_make_optimizer(model.parameters(), settings, capturable=capturable)


#: Per optimizer: its parameters and state tensors in step order, for :func:`adam_step`.
_FUSED_STATE: weakref.WeakKeyDictionary[torch.optim.Optimizer, tuple[list[torch.Tensor], ...]] = (
    weakref.WeakKeyDictionary())


def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``, for a fused Adam without its per-step Python bookkeeping.

    ``Adam.step`` spends about as long gathering its state lists, checking devices and asking for an
    accelerator as its fused kernel needs for a small pack (0.3 ms a step on the CPU). From the second step
    on, this calls the very kernel ``Adam.step`` calls (``torch._fused_adam_``, after incrementing the step
    counts), with the group's hyperparameters and the optimizer's own state tensors, so the state, the
    checkpoints and the arithmetic stay Adam's. Anything else (not fused, capturable, several groups,
    amsgrad, a tensor learning rate, a state replaced by ``load_state_dict``) takes ``optimizer.step()``.
    """
    cached = _FUSED_STATE.get(optimizer)
    if cached is not None:
        params, exp_avgs, exp_avg_sqs, steps = cached
        if optimizer.state[params[0]].get("exp_avg") is exp_avgs[0]:
            group = optimizer.param_groups[0]
            beta1, beta2 = group["betas"]
            grads = cast(list[torch.Tensor], [p.grad for p in params])  # all set: every parameter is used
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps,
                               lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                               eps=group["eps"],
                               amsgrad=False, maximize=False, grad_scale=None, found_inf=None)
            return
    optimizer.step()
    groups = optimizer.param_groups
    group = groups[0]
    params = list(group["params"])
    if (isinstance(optimizer, torch.optim.Adam) and len(groups) == 1 and group["fused"]
            and not group["capturable"] and not group["amsgrad"] and not group["maximize"]
            and not group["differentiable"] and not group["decoupled_weight_decay"]
            and not isinstance(group["lr"], torch.Tensor) and hasattr(torch, "_fused_adam_")
            and all(p.grad is not None and p in optimizer.state for p in params)):
        states = [optimizer.state[p] for p in params]
        _FUSED_STATE[optimizer] = (params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                                   [s["step"] for s in states])


def select_members(model: PackedMLP, optimizer: torch.optim.Optimizer, keep: Sequence[int], settings: Settings,
                   *, capturable: bool = False) -> tuple[PackedMLP, torch.optim.Optimizer]:
    """The caller's members ``keep`` of ``model`` as a smaller pack, with their weights and optimizer state.

    Training the smaller pack on goes on exactly as the big one would have for those members (every optimizer
    here keeps elementwise state: Adam's moments, SGD's momentum, RMSprop's averages; step counts are shared),
    only faster: finished members and padding are gone.
    """
    small, transfer = model.select(keep)
    new = make_optimizer(small, settings, capturable=capturable)
    old_params = dict(model.named_parameters())
    for name, param in small.named_parameters():
        old = old_params[name]
        state = optimizer.state.get(old)
        if state:
            new.state[param] = {key: transfer(value, name) if isinstance(value, torch.Tensor)
                                and value.shape == old.shape else (value.clone() if isinstance(value, torch.Tensor)
                                                                   else value)
                                for key, value in state.items()}
    return small, new
