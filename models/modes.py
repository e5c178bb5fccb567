"""Train/eval modes of networks: a network that is always in eval mode, and eval mode for the span of a block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


class AlwaysEval(nn.Module):
    """A frozen network whose eval mode is permanent, whatever a parent's .train() asks.

    Lightning calls .train() on the whole tree every epoch; a frozen network's batch norm must keep its
    running statistics and its dropout must stay off.
    """

    def train(self, mode: bool = True) -> AlwaysEval:
        """Stay in eval mode whatever `mode` says."""
        return super().train(False)


@contextlib.contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Eval mode for the block (batch norm on running statistics, no dropout, no codebook EMA step), then each
    submodule's own mode back exactly as it was, also when the block raises."""
    modes = {module: module.training for root in modules for module in root.modules()}
    for root in modules:
        root.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
