"""LeNet-5 (LeCun et al., 1998), written the way PyTorch's tutorials write it, for scikit-learn's handwritten digits.

Two convolutions of 5x5 kernels, each followed by ReLU and 2x2 max pooling, then three linear layers: 32x32 images
in, 10 class scores out, with nn.CrossEntropyLoss. scikit-learn's digits are 8x8; examples/digits.py enlarges each
pixel to 4x4 and writes them as examples/data/digits.npz (pip install scikit-learn first).

  python examples/digits.py                          # examples/data/digits.npz: 1,797 images and their labels
  symprop derive examples/lenet.py:build             # the NumPy and torch modules, and the derivation
  symprop check examples/lenet.py:build              # both against torch.autograd
  symprop train examples/lenet.py:build --data examples/data/digits.npz --optimizer adam --lr 2e-3 --epochs 12
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LeNet5(nn.Module):
    def __init__(self, classes: int = 10, padding: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=padding)  # 1x32x32 -> 6x28x28 (or 28x28 padded by 2), pooled
        self.conv2 = nn.Conv2d(6, 16, 5)  # 6x14x14 -> 16x10x10, pooled to 16x5x5
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build(batch: int = 4):
    """symprop's factory: the model, its loss and example inputs and targets."""
    torch.manual_seed(0)
    images = torch.rand(batch, 1, 32, 32)
    labels = torch.randint(0, 10, (batch,))
    return LeNet5(), nn.CrossEntropyLoss(), (images,), labels


def build_mnist(batch: int = 4):
    """The same network on MNIST's 28x28 images, its first convolution padded by 2 (as MNIST's LeNets are)."""
    torch.manual_seed(0)
    return LeNet5(padding=2), nn.CrossEntropyLoss(), (torch.rand(batch, 1, 28, 28),), torch.randint(0, 10, (batch,))
