"""How many forward hooks a model carries: every test that checks "no hook left behind" counts them this way."""

from torch import nn


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
