"""A bounded memo for costly values that recur across feed items.

Copies of one wire story, and the stock phrases of every story, repeat the same shingles,
and each costs a SHAKE call for its MinHash values (``feeds.story``). ``functools.lru_cache``
would remember them too, but it costs a call per key and relinks its list on every hit; a
batch of keys known here costs one ``map``, and the unknown ones are computed together.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """The values of ``compute`` (a batch function: keys in, their values in order out) for
    keys seen before. When full it forgets everything at once: memory stays bounded, and
    the keys that matter come back within an item or two. A lookup never relies on what it
    inserted, so threads may share one. Values must not be None (None means unknown)."""

    def __init__(self, compute: Callable[[list[K]], Iterable[V]], size: int) -> None:
        self._compute = compute
        self._size = size
        self._known: dict[K, V] = {}

    def values(self, keys: Sequence[K]) -> list[V]:
        """The value of each key, in order."""
        known = self._known
        try:  # one C loop when every key is known, the common case
            return list(map(known.__getitem__, keys))
        except KeyError:
            pass
        found = list(map(known.get, keys))
        missing = [key for key, value in zip(keys, found, strict=True) if value is None]
        computed = dict(zip(missing, self._compute(missing), strict=True))
        if len(known) + len(computed) > self._size:
            known.clear()
        known.update(computed)
        return [computed[k] if v is None else v for k, v in zip(keys, found, strict=True)]

    def __len__(self) -> int:
        return len(self._known)

    def clear(self) -> None:
        self._known.clear()
