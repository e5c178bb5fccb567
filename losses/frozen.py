"""A pre-trained network used inside a loss (imitator G, F_3d, F_id) that must not learn."""

from __future__ import annotations

from torch import nn

from models.modes import AlwaysEval


class Frozen(AlwaysEval):
    """Wraps a network: no parameter requires grad and it stays in eval mode; gradients still flow through it."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.requires_grad_(False).eval()

    def forward(self, *args, **kwargs):
        # Checked on every call (a few dozen flags): something that re-enables gradients on the whole
        # model (a fine-tuning callback, requires_grad_(True)) would otherwise silently train this net.
        if self.module.training or any(p.requires_grad for p in self.module.parameters()):
            raise RuntimeError(
                f"frozen {type(self.module).__name__} was put back in training mode or given "
                "trainable parameters; it must stay eval() with requires_grad=False"
            )
        return self.module(*args, **kwargs)
