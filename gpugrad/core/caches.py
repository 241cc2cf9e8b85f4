"""Every cache of gpugrad in one registry: bounded, least recently used first out, and
cleared together by ``gpugrad.clear_caches()``.

What is cached, and by what it is keyed: plans by graph structure (ops, arguments, dtypes,
shapes, which leaves repeat), gradient plans by that structure plus the targets' positions,
generated kernels and their compiled forms by source (and device architecture), snippets and
templates by file name, numpy forms of snippets by (primitive, dtype).
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Any, Callable

_REGISTRY: dict[str, Any] = {}   # name -> an object with clear() and __len__


class LRU:
    """A bounded mapping: get() marks an entry as recently used, put() evicts the least
    recently used entry beyond ``limit``. Thread-safe."""

    def __init__(self, name: str, limit: int = 4096):
        self.name, self.limit = name, limit
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        _REGISTRY[name] = self

    def get(self, key, default=None):
        with self._lock:
            try:
                self._data.move_to_end(key)
            except KeyError:
                return default
            return self._data[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.limit:
                self._data.popitem(last=False)

    def values(self) -> list:
        with self._lock:
            return list(self._data.values())

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key) -> bool:
        return key in self._data


class Table(dict):
    """A plain dict, so that a lookup costs what a dict's does (no lock, no recency
    bookkeeping: for the per-call tables of the cached paths), emptied whenever it reaches
    ``limit`` entries. Its values must be safe to lose at any time."""

    def __init__(self, name: str, limit: int = 4096):
        super().__init__()
        self.name, self.limit = name, limit
        _REGISTRY[name] = self

    def put(self, key, value) -> None:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value

    __hash__ = object.__hash__


class _Memoized:
    """functools.lru_cache, registered: clear() and __len__ for the registry."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def clear(self) -> None:
        self.fn.cache_clear()

    def __len__(self) -> int:
        return self.fn.cache_info().currsize


def memoize(name: str, maxsize: int | None = 1024) -> Callable:
    """A registered lru_cache decorator."""
    def wrap(fn: Callable) -> Callable:
        cached = functools.lru_cache(maxsize=maxsize)(fn)
        _REGISTRY[name] = _Memoized(cached)
        return cached
    return wrap


def register(name: str, cache: Any) -> Any:
    """Register any object with clear() and __len__ (a backend's compiled-module table)."""
    _REGISTRY[name] = cache
    return cache


def clear_caches() -> None:
    """Drop every cached plan, generated kernel, compiled module and snippet: the next call
    of each function traces, plans and compiles again (the on-disk cubin cache stays)."""
    for cache in list(_REGISTRY.values()):
        cache.clear()


def cache_sizes() -> dict[str, int]:
    """{cache name: entries held}, for tests and for a user watching memory."""
    return {name: len(cache) for name, cache in _REGISTRY.items()}
