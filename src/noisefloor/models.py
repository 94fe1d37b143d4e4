"""The reference model: a bidirectional LSTM that reads an image row by row.

No training code here; see :mod:`noisefloor.train`.
"""

from __future__ import annotations

import torch
from torch import nn

from .params import ModelParams


class BiLSTMClassifier(nn.Module):
    """LSTM over image rows, then a linear classifier.

    Parameters
    ----------
    input_size : int
        Features per time step (image width: 28 for MNIST, 8 for digits).
    n_classes : int
    hidden_size, num_layers, bidirectional, dropout
        As in :class:`torch.nn.LSTM` (dropout acts between LSTM layers).
    pooling : {"last", "mean"}
        ``"last"`` is the classic classifier reading ``out[:, -1]``: faithful to
        the reference, though there the top layer's reverse direction has seen
        only the last row (its ``weight_hh_l1_reverse`` gets no gradient).
        ``"mean"`` averages the outputs over all rows, so both directions'
        full passes reach the classifier.
    """

    def __init__(self, input_size: int, n_classes: int, hidden_size: int = 128, num_layers: int = 2,
                 bidirectional: bool = True, dropout: float = 0.0, pooling: str = "last"):
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', not {pooling!r}")
        self.pooling = pooling
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), n_classes)

    @classmethod
    def from_params(cls, p: ModelParams, input_size: int, n_classes: int) -> "BiLSTMClassifier":
        return cls(input_size, n_classes, hidden_size=p.hidden_size, num_layers=p.num_layers,
                   bidirectional=p.bidirectional, dropout=p.dropout, pooling=p.pooling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, rows, cols) -> logits (batch, n_classes)."""
        out, _ = self.lstm(x)
        features = out[:, -1] if self.pooling == "last" else out.mean(dim=1)
        return self.head(features)
