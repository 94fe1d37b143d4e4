"""A training script of your own: scikit-learn's MLP on the 8x8 digits.

noisefloor runs it once per (config, seed) as

    python train.py --lr 0.003 --hidden 64 --alpha 0.0001 --epochs 40 --seed 3 --out <folder>

It knows nothing about noisefloor. What it must do: train with the given
hyperparameters, let --seed fix all of its randomness, and write into --out

- metrics.json: {"val_acc": ..., ...}  (the metric params.yaml's stats section analyses;
                n_val, the size of the validation set, tells the analysis the metric's resolution)
- history.csv:  one row per epoch (optional: the report's learning curves)
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lr", type=float, required=True, help="Adam's learning rate")
    ap.add_argument("--hidden", type=int, required=True, help="units of the hidden layer")
    ap.add_argument("--alpha", type=float, required=True, help="L2 penalty")
    ap.add_argument("--epochs", type=int, required=True, help="passes over the training set")
    ap.add_argument("--seed", type=int, required=True, help="fixes the initial weights and the batch order")
    ap.add_argument("--out", type=Path, required=True, help="folder for metrics.json and history.csv")
    args = ap.parse_args()

    # The split is fixed (random_state=0): only the model's randomness follows the seed.
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.2, random_state=0, stratify=y)

    model = MLPClassifier(hidden_layer_sizes=(args.hidden,), learning_rate_init=args.lr, alpha=args.alpha,
                          batch_size=100, random_state=args.seed)
    rows = ["epoch,train_loss,val_acc"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(1, args.epochs + 1):
            model.partial_fit(x_train, y_train, classes=np.arange(10))
            val_acc = model.score(x_val, y_val)
            rows.append(f"{epoch},{float(model.loss_)!r},{float(val_acc)!r}")
            print(f"epoch {epoch}: train_loss {model.loss_:.4f}  val_acc {val_acc:.4f}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "history.csv").write_text("\n".join(rows) + "\n")
    (args.out / "metrics.json").write_text(json.dumps({"val_acc": float(val_acc), "train_loss": float(model.loss_),
                                                     "n_val": len(y_val)}) + "\n")


if __name__ == "__main__":
    main()
