"""scikit-learn's real 8x8 handwritten digits (UCI optical digits test set, 1797 images, 17
grey levels 0..16), as ``(N, 1, 8, 8)`` float32 tensors in [0, 1] with a stratified split."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["LabelledSplit", "load_digits"]


@dataclass
class LabelledSplit:
    x_train: torch.Tensor  # (N, C, ...) float32 in data_range
    y_train: torch.Tensor  # (N,) int64 class indices
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]     # class names, index = label
    data_range: tuple[float, float] = (0.0, 1.0)
    description: str = ""


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> LabelledSplit:
    """Pixels divided by 16 (so [0, 1]); a stratified train/test split fixed by ``seed``."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    bunch = sk_load()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]
    idx_train, idx_test = train_test_split(np.arange(len(x)), test_size=test_fraction, random_state=seed,
                                           stratify=bunch.target)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    return LabelledSplit(t(x[idx_train]), t(bunch.target[idx_train]).long(), t(x[idx_test]), t(bunch.target[idx_test]).long(),
                         classes=[str(c) for c in bunch.target_names],
                         description=f"sklearn digits 8x8, pixels/16, stratified split seed {seed}")
