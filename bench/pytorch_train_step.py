#!/usr/bin/env python3
"""Seconds per training step in PyTorch, the reference for `stages/models/benches/train_step.rs`.

One step = build the float batch from 8-bit pixels, forward, focal loss (gamma 2, alpha 0.25,
per-sample class weights, batch mean), backward, Adam update (lr 1e-3, betas 0.9/0.999, eps 1e-7,
Keras's constants as `TrainConfig::default()` has them), read the loss back. Batch 16, 224x224,
synthetic noise, alternately REAL and FAKE, `torch.set_num_threads(2)` by default: the same work
the burn bench times.

The architectures are written as `stages/models/src/arch/` defines them:
- MesoNet-4: 4 x [Conv(same) -> ReLU -> BatchNorm -> MaxPool] with (8,3,2) (8,5,2) (16,5,2)
  (16,5,4), flatten (784), Dropout(0.5) -> Dense(16) -> LeakyReLU(0.1) -> Dropout(0.5) -> Dense(1).
- Baseline: 4 x [Conv3x3(same) -> ReLU -> BatchNorm -> MaxPool(2)] with 32/64/128/256 filters,
  global average pool, Dense(128) -> ReLU -> Dropout(0.5), Dense(1). (The reference's L2 term on
  Dense(128) is not in our training loss either.)
- MobileNetV3Small: torchvision's `mobilenet_v3_small().features` (no pretrained weights), input
  scaled `2x - 1` as ours is, global average pool (576), Dense(1). It differs from Keras's (and
  our) network in small ways that do not change the cost: symmetric rather than Keras's
  asymmetric padding of the strided convolutions, squeeze widths rounded by `_make_divisible`
  (the same values here), Kaiming rather than Glorot initialisation.
BatchNorm uses Keras's epsilon 1e-3 and momentum 0.99 (PyTorch momentum 0.01), as ours does.

Usage: python bench/pytorch_train_step.py [--threads 2] [--steps 20] [--warmup 3] [models...]
Prints one line per model: median, min and max seconds per step.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

BATCH = 16
SIZE = 224
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def conv_relu_bn_pool(c_in, c_out, kernel, pool):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2),
        nn.ReLU(),
        nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.MaxPool2d(pool),
    )


def mesonet4():
    blocks, c_in = [], 3
    for c_out, kernel, pool in [(8, 3, 2), (8, 5, 2), (16, 5, 2), (16, 5, 4)]:
        blocks.append(conv_relu_bn_pool(c_in, c_out, kernel, pool))
        c_in = c_out
    return nn.Sequential(
        *blocks,
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(16 * 7 * 7, 16),
        nn.LeakyReLU(0.1),
        nn.Dropout(0.5),
        nn.Linear(16, 1),
    )


def baseline():
    blocks, c_in = [], 3
    for c_out in [32, 64, 128, 256]:
        blocks.append(conv_relu_bn_pool(c_in, c_out, 3, 2))
        c_in = c_out
    return nn.Sequential(
        *blocks,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 1),
    )


class ScaleToSymmetric(nn.Module):
    """`2x - 1`: our MobileNetV3Small takes [0, 1] and computes Keras's [-1, 1] itself."""

    def forward(self, x):
        return x * 2.0 - 1.0


def mobilenet_v3_small():
    from torchvision.models import mobilenet_v3_small as tv_mobilenet

    features = tv_mobilenet(weights=None).features
    for module in features.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps, module.momentum = BN_EPS, BN_MOMENTUM
    return nn.Sequential(
        ScaleToSymmetric(),
        features,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(576, 1),
    )


MODELS = {
    "mesonet4": mesonet4,
    "baseline": baseline,
    "mobilenet_v3_small": mobilenet_v3_small,
}


def focal_loss(logits, targets, weights, gamma=2.0, alpha=0.25):
    """The alpha-balanced binary focal loss on logits, weighted per sample, batch mean
    (`LossKind::Focal` in stages/models/src/training/loss.rs)."""
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    positive = targets * alpha * (1 - p) ** gamma * log_p
    negative = (1 - targets) * (1 - alpha) * p**gamma * log_not_p
    return (-(positive + negative) * weights).mean()


def time_steps(name, steps, warmup):
    torch.manual_seed(1)
    model = MODELS[name]()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    generator = torch.Generator().manual_seed(2)
    faces = torch.randint(0, 256, (BATCH, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    targets = (torch.arange(BATCH) % 2).float().unsqueeze(1)
    weights = torch.ones(BATCH, 1)
    seconds = []
    for i in range(warmup + steps):
        started = time.perf_counter()
        x = faces.float().div_(255.0)
        optimizer.zero_grad(set_to_none=True)
        loss = focal_loss(model(x), targets, weights)
        loss.backward()
        optimizer.step()
        loss.item()
        if i >= warmup:
            seconds.append(time.perf_counter() - started)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", help=f"any of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    for name in args.models:
        if name not in MODELS:
            parser.error(f"unknown model {name!r}: use any of {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {BATCH}")
    for name in args.models or list(MODELS):
        s = time_steps(name, args.steps, args.warmup)
        print(
            f"{name}: median {statistics.median(s):.4f} s/step "
            f"(min {min(s):.4f}, max {max(s):.4f}, {len(s)} steps)"
        )


if __name__ == "__main__":
    main()
