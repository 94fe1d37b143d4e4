"""Names of the files a training run writes into its folder.

A module of its own, free of heavy imports, so that readers of run folders
(aggregation, the workflow) need not import torch (about 3 s) to know them.
"""

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_acc", "time_s")
