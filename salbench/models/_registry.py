"""The model registry: names -> factories, fed by the ``salbench.models`` entry points.

Built-in models and third-party plugins are registered the same way, through
the ``salbench.models`` entry-point group (flake8's plugin finder is the
model). Entry points stay lazy until a model is created or listed with
``load_all``. Programmatic registration (``register_model``) is for notebooks
and tests.

Rules:

* **Built-in names are reserved.** The built-ins are the entry points of
  salbench's own distribution; a plugin entry point with one of their names is
  refused (recorded in :attr:`ModelRegistry.failures`), whatever the order in
  which entry points are discovered: the built-in stays.
* **A broken plugin never breaks the rest.** A plugin that fails to import, whose
  factory is not callable, or that raises when created or in ``predict`` is
  reported in one line naming its distribution and entry point
  (:class:`PluginError`, and ``salbench models`` lists load failures); every
  other model keeps working.
* Two plugins claiming one name: the first wins, the second is reported.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable, Iterable

from salbench._plugins import BUILTIN_DISTRIBUTION, EntryPointTable
from salbench._plugins import describe as _describe
from salbench._plugins import first_line as _first_line
from salbench._plugins import origin as _origin

GROUP = "salbench.models"


class PluginError(RuntimeError):
    """A plugin model failed (to load, to be created, or in ``predict``); the message names the plugin."""


class PluginLoadError(PluginError, ImportError):
    """The plugin providing a model could not be imported, or its factory is not callable."""


class ModelRegistry:
    """A name -> factory table with lazy entry points and recorded plugin failures.

    Parameters
    ----------
    entry_points : iterable of EntryPoint, optional
        Entry points to register now (for tests); the default registry reads
        the installed ``salbench.models`` group instead, on first use.
    discover : bool
        Whether to read the installed entry-point group on first use.
    builtin_distribution : str
        Entry points of this distribution are the built-ins, whose names plugins may not take.
    """

    def __init__(self, entry_points: Iterable[EntryPoint] = (), *, discover: bool = False,
                 builtin_distribution: str = BUILTIN_DISTRIBUTION):
        # discovery, reserved names and failures: the path every plugin group shares (salbench._plugins)
        self._table = EntryPointTable(GROUP, "model", builtin_distribution=builtin_distribution)
        self._factories: dict[str, Callable[..., Any]] = self._table.loaded
        self._lazy: dict[str, EntryPoint] = self._table.lazy
        self.failures: dict[str, str] = self._table.failures  # name -> one-line error (import failures, clashes)
        self._origins: dict[str, str] = self._table.origins
        self._plugins: dict[str, EntryPoint] = self._table.plugins  # names provided by third-party entry points
        self.builtin_names: set[str] = self._table.builtin_names
        self._discover = discover
        self.add_entry_points(entry_points)

    # -- registration ---------------------------------------------------------------
    def is_builtin(self, ep: EntryPoint) -> bool:
        """Whether ``ep`` comes from salbench's own distribution."""
        return self._table.is_builtin(ep)

    def add_entry_points(self, eps: Iterable[EntryPoint]) -> None:
        """Register entry points lazily.

        Built-ins are registered first, so a plugin entry point with a built-in's
        name is refused (a failure) whatever the discovery order; a second plugin
        entry point for a taken name is a failure too (the first wins).
        """
        self._table.add(eps)

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
            raise PluginLoadError(f"model {name!r} could not be loaded: {self.failures[name]}")
        if name in self.failures:  # tried before (e.g. by load_all) and failed: say so, not "unknown"
            raise PluginLoadError(f"model {name!r} could not be loaded: {self.failures[name]}")
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Known models: {', '.join(self.names()) or 'none'}"
        )

    def _load(self, name: str) -> None:
        self._table.load(name, check=_check_callable)

    def plugin_origin(self, name: str) -> str | None:
        """``plugin DIST entry point 'NAME = module:attr'`` for a third-party model, None for built-ins."""
        ep = self._plugins.get(name)
        return None if ep is None else _describe(ep)

    def create(self, name: str, **kwargs: Any):
        """Create model ``name``; a plugin's failures become :class:`PluginError` naming the plugin.

        A plugin model's ``predict`` (and ``predict_log_density``, ``fit``) are wrapped so that an exception
        there is a :class:`PluginError` naming the plugin too.
        """
        factory = self.get(name)
        who = self.plugin_origin(name)
        if who is None:
            try:
                return factory(**kwargs)
            except TypeError as exc:
                raise _unknown_option(name, factory, kwargs, exc) or exc
        try:
            model = factory(**kwargs)
        except Exception as exc:
            raise PluginError(f"model {name!r} ({who}) failed to create: {type(exc).__name__}: "
                              f"{_first_line(exc)}") from exc
        if not callable(getattr(model, "predict", None)):
            raise PluginError(f"model {name!r} ({who}): the factory returned {type(model).__name__}, "
                              "which has no predict method")
        for method in ("predict", "predict_log_density", "fit"):
            _guard(model, method, name, who)
        return model

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


def _unknown_option(name: str, factory: Callable[..., Any], kwargs: dict, exc: TypeError) -> ValueError | None:
    """A ValueError naming the model and its options when ``exc`` says a given option is not one of them."""
    m = re.search(r"got an unexpected keyword argument '(\w+)'", str(exc))
    if m is None or m.group(1) not in kwargs:
        return None  # a TypeError from inside the model: not about the options given
    key, options = m.group(1), [o for o in model_options(factory) if o != "checkpoint"]
    listed = f"; its options (--model-option): {', '.join(options)}" if options else "; it takes no options"
    if key == "checkpoint":
        return ValueError(f"model {name!r} takes no checkpoint (it has no weights to load): drop --checkpoint{listed}")
    return ValueError(f"model {name!r} has no option {key!r}{listed}")


def model_options(factory: Callable[..., Any]) -> list[str]:
    """Keyword options a factory takes: its own, or (``**kwargs``) those of the class it is annotated to return."""
    import inspect
    import typing

    def keywords(fn) -> tuple[list[str], bool]:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return [], True
        names = [p.name for p in params if p.default is not p.empty and p.kind in (p.KEYWORD_ONLY,
                                                                                    p.POSITIONAL_OR_KEYWORD)]
        return names, any(p.kind is p.VAR_KEYWORD for p in params)

    names, open_ended = keywords(factory)
    if open_ended:
        try:
            returned = typing.get_type_hints(factory).get("return")
        except Exception:  # noqa: BLE001 - an annotation that does not resolve: options unknown
            returned = None
        if isinstance(returned, type):
            names += [n for n in keywords(returned)[0] if n not in names]
    return names


def _check_callable(ep: EntryPoint, obj: Any) -> None:
    if not callable(obj):
        raise TypeError(f"{ep.value} is not callable (a {type(obj).__name__})")


def _guard(model: Any, method: str, name: str, who: str) -> None:
    """Wrap ``model.<method>`` so that its exceptions become :class:`PluginError` naming the plugin."""
    fn = getattr(model, method, None)
    if not callable(fn):
        return

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"model {name!r} ({who}) raised in {method}: {type(exc).__name__}: "
                              f"{_first_line(exc)}") from exc

    try:
        setattr(model, method, guarded)
    except (AttributeError, TypeError):  # __slots__ or a frozen object: leave it unguarded
        pass


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
    PluginLoadError
        The plugin providing ``name`` failed to import (an ``ImportError``).
    PluginError
        A plugin's factory raised; later, its model's ``predict`` raising is one too.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if checkpoint is not None:
        kwargs["checkpoint"] = checkpoint
    return _REGISTRY.create(name, **kwargs)


def plugin_failures() -> dict[str, str]:
    """Import every registered entry point and return name -> error for those that failed."""
    return _REGISTRY.load_all()


def default_registry() -> ModelRegistry:
    """The process-wide registry behind the module-level functions."""
    return _REGISTRY
