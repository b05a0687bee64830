"""The model registry: names -> factories, fed by the ``salbench.models`` entry points.

Built-in models and third-party plugins are registered the same way, through
the ``salbench.models`` entry-point group (flake8's plugin finder is the
model). Entry points stay lazy until a model is created or listed with
``load_all``; a plugin whose import fails is recorded in :attr:`failures` and
never breaks the others. Programmatic registration (``register_model``) is for
notebooks and tests.
"""

from __future__ import annotations

import difflib
import fnmatch
import traceback
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable, Iterable

GROUP = "salbench.models"


class ModelRegistry:
    """A name -> factory table with lazy entry points and recorded plugin failures.

    Parameters
    ----------
    entry_points : iterable of EntryPoint, optional
        Entry points to register now (for tests); the default registry reads
        the installed ``salbench.models`` group instead, on first use.
    discover : bool
        Whether to read the installed entry-point group on first use.
    """

    def __init__(self, entry_points: Iterable[EntryPoint] = (), *, discover: bool = False):
        self._factories: dict[str, Callable[..., Any]] = {}
        self._lazy: dict[str, EntryPoint] = {}
        self.failures: dict[str, str] = {}  # name -> one-line error (import failures, clashes)
        self._origins: dict[str, str] = {}
        self._discover = discover
        self.add_entry_points(entry_points)

    # -- registration ---------------------------------------------------------------
    def add_entry_points(self, eps: Iterable[EntryPoint]) -> None:
        """Register entry points lazily; a second entry point for a taken name is a failure."""
        for ep in eps:
            if ep.group != GROUP:
                continue
            if ep.name in self._factories or ep.name in self._lazy:
                where = _origin(ep)
                self.failures[f"{ep.name} ({where})"] = (
                    f"duplicate model name {ep.name!r} from {where}: already provided by "
                    f"{_origin(self._lazy[ep.name]) if ep.name in self._lazy else 'register_model'}; ignored"
                )
                continue
            self._lazy[ep.name] = ep

    def register(self, fn: Callable[..., Any] | None = None, *, name: str | None = None):
        """Register ``fn`` under ``name`` (default ``fn.__name__``); usable as a decorator.

        Raises
        ------
        ValueError
            If the name is already registered (by an entry point or a call).
        """

        def deco(f: Callable[..., Any]) -> Callable[..., Any]:
            key = name or f.__name__
            self._ensure_discovered()
            if key in self._factories or key in self._lazy:
                raise ValueError(f"model {key!r} is already registered")
            if not callable(f):
                raise TypeError(f"model factory for {key!r} is not callable: {f!r}")
            self._factories[key] = f
            return f

        return deco(fn) if fn is not None else deco

    # -- lookup ------------------------------------------------------------------------
    def _ensure_discovered(self) -> None:
        if self._discover:
            self._discover = False
            self.add_entry_points(entry_points(group=GROUP))

    def names(self) -> list[str]:
        """All registered names (lazy ones included, failed imports excluded), sorted."""
        self._ensure_discovered()
        return sorted(set(self._factories) | set(self._lazy))

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching the shell-style ``pattern`` (``fnmatch``), sorted."""
        return [n for n in self.names() if fnmatch.fnmatchcase(n, pattern)]

    def get(self, name: str) -> Callable[..., Any]:
        """The factory for ``name``, importing its entry point if needed.

        Raises
        ------
        KeyError
            Unknown name, with "Did you mean ...?" suggestions.
        ImportError
            The plugin providing ``name`` failed to import (the error is also
            recorded in :attr:`failures`).
        """
        self._ensure_discovered()
        if name in self._factories:
            return self._factories[name]
        if name in self._lazy:
            self._load(name)
            if name in self._factories:
                return self._factories[name]
            raise ImportError(f"model {name!r} could not be loaded: {self.failures[name]}")
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Known models: {', '.join(self.names()) or 'none'}"
        )

    def _load(self, name: str) -> None:
        ep = self._lazy.pop(name)
        try:
            obj = ep.load()
            if not callable(obj):
                raise TypeError(f"{ep.value} is not callable")
        except Exception as exc:  # a broken plugin must not break the others
            last = traceback.extract_tb(exc.__traceback__)[-1:] or None
            at = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
            self.failures[name] = f"{_origin(ep)}: {type(exc).__name__}: {exc}{at}"
            return
        self._factories[name] = obj
        self._origins[name] = _origin(ep)

    def load_all(self) -> dict[str, str]:
        """Import every lazy entry point now; return :attr:`failures` (name -> error)."""
        self._ensure_discovered()
        for name in list(self._lazy):
            self._load(name)
        return dict(self.failures)

    def origin(self, name: str) -> str:
        """Where ``name`` comes from: ``module:attr`` plus the distribution, if known."""
        self._ensure_discovered()
        if name in self._lazy:
            return _origin(self._lazy[name])
        f = self._factories.get(name)
        if f is None:
            raise KeyError(name)
        return self._origins.get(name, f"{f.__module__}:{f.__qualname__}")


class UnknownModelError(KeyError, ValueError):
    """An unknown model name (a ``KeyError`` and a ``ValueError`` so the CLI reports it in one line)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) or (dist.metadata["Name"] if dist is not None else None)
    return f"{ep.value} [{name}]" if name else ep.value


_REGISTRY = ModelRegistry(discover=True)


def register_model(fn: Callable[..., Any] | None = None, *, name: str | None = None):
    """Register a model factory in the default registry (decorator or call).

    Examples
    --------
    >>> from salbench.models import register_model, create_model
    >>> @register_model(name="doc_constant")
    ... def _doc_constant(**kw):
    ...     from salbench.models.baselines import UniformModel
    ...     return UniformModel(**kw)
    >>> create_model("doc_constant").name
    'uniform'
    """
    return _REGISTRY.register(fn, name=name)


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching ``pattern`` (fnmatch), sorted.

    Examples
    --------
    >>> list_models("shallow_*")
    ['shallow_kl', 'shallow_mse']
    """
    return _REGISTRY.list(pattern)


def create_model(name: str, checkpoint: str | None = None, **kwargs: Any):
    """Create model ``name``; ``None``-valued keyword arguments are dropped (timm-style).

    Parameters
    ----------
    name : str
        A registered model name (see :func:`list_models`).
    checkpoint : str or path, optional
        Weights to load (a checkpoint directory, its ``model.safetensors``, or a
        training run directory); only passed on when given.
    **kwargs
        Model options, e.g. ``output_size`` for the baselines.

    Raises
    ------
    UnknownModelError
        Unknown name, with suggestions ("Did you mean 'shallow_kl'?").
    ImportError
        The plugin providing ``name`` failed to import.
    """
    factory = _REGISTRY.get(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if checkpoint is not None:
        kwargs["checkpoint"] = checkpoint
    return factory(**kwargs)


def plugin_failures() -> dict[str, str]:
    """Import every registered entry point and return name -> error for those that failed."""
    return _REGISTRY.load_all()


def default_registry() -> ModelRegistry:
    """The process-wide registry behind the module-level functions."""
    return _REGISTRY
