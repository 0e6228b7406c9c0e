"""Class-balanced P x K batches for the triplet loss: P classes, K images each, every batch.

Distributed training gives each rank a disjoint share of the same seeded sequence of batches, so
ranks never see the same batch and all of them run the same number of steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class PKBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        labels: Sequence[int],
        classes_per_batch: int,
        images_per_class: int,
        batches_per_epoch: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        by_class: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            by_class[int(label)].append(index)
        self.pools = [np.array(v) for _, v in sorted(by_class.items())]
        if len(self.pools) < 2:
            raise ValueError("a ranking loss needs at least two classes")
        self.p = min(classes_per_batch, len(self.pools))
        self.k = images_per_class
        total = batches_per_epoch or max(1, len(labels) // (self.p * self.k))
        self.steps = max(1, total // world_size)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        for step in range(self.steps * self.world_size):
            classes = rng.choice(len(self.pools), size=self.p, replace=False)
            batch = []
            for c in classes:
                pool = self.pools[c]
                batch += rng.choice(pool, size=self.k, replace=len(pool) < self.k).tolist()
            if step % self.world_size == self.rank:
                yield batch
