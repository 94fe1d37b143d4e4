"""Shared fixtures. Matplotlib must never try to open a window in tests."""

import matplotlib

matplotlib.use("Agg")
