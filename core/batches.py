"""Iterate in fixed-size batches (itertools.batched arrives with Python 3.12)."""

from collections.abc import Iterable, Iterator


def batched(iterable: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
