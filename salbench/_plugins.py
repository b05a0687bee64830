"""Entry-point plugins: the one discovery path of every salbench plugin group.

Used by the model registry (``salbench.models``, :mod:`salbench.models._registry`) and the
metric registry (``salbench.metrics``, :mod:`salbench.metrics.registry`). Modelled on
flake8's plugin finder. The rules, the same for every group:

* **Built-in names are reserved.** Built-ins are the entry points of salbench's own
  distribution, plus any names the group reserves up front (the metric registry's own
  entries). A plugin entry point with a built-in's name is refused, whatever the order in
  which entry points are discovered: the built-in stays.
* **Two plugins claiming one name:** the first wins, the second is reported.
* **A broken plugin never breaks the rest.** One that fails to import, calls ``sys.exit``,
  or whose object fails the group's check is recorded in :attr:`EntryPointTable.failures`
  as one line naming its distribution and entry point (and the plugin's file and line
  where it failed); everything else keeps working.

This module sits at the bottom of the package (no salbench imports), so every layer can use it.
"""

from __future__ import annotations

import re
import traceback
from importlib.metadata import EntryPoint
from typing import Any, Callable, Iterable

#: The distribution whose entry points are the built-ins.
BUILTIN_DISTRIBUTION = "salbench"


class EntryPointTable:
    """One entry-point group's names: lazy entry points, loaded objects, recorded failures.

    Parameters
    ----------
    group : str
        The entry-point group, e.g. ``"salbench.models"``.
    kind : str
        What the group provides (``"model"``, ``"metric"``), for messages.
    builtin_distribution : str
        Entry points of this distribution are built-ins.
    reserved : iterable of str
        Names built in without an entry point (refused to every plugin).

    Attributes
    ----------
    lazy : dict of str to EntryPoint
        Registered, not imported yet.
    loaded : dict of str to object
        Imported objects (a registry may add its own, e.g. ``register_model``).
    origins : dict of str to str
        ``module:attr [distribution]`` of each loaded entry point.
    plugins : dict of str to EntryPoint
        Names provided by third-party entry points (loaded or not).
    builtin_names : set of str
        Reserved names and built-in entry points.
    failures : dict of str to str
        One line per refused or broken entry point (key: the name, or ``name (origin)``
        for a refused duplicate).
    """

    def __init__(self, group: str, kind: str, *, builtin_distribution: str = BUILTIN_DISTRIBUTION,
                 reserved: Iterable[str] = ()):
        self.group, self.kind = group, kind
        self._builtin_dist = normalise(builtin_distribution)
        self.lazy: dict[str, EntryPoint] = {}
        self.loaded: dict[str, Any] = {}
        self.origins: dict[str, str] = {}
        self.plugins: dict[str, EntryPoint] = {}
        self.builtin_names: set[str] = set(reserved)
        self.failures: dict[str, str] = {}

    def is_builtin(self, ep: EntryPoint) -> bool:
        """Whether ``ep`` comes from salbench's own distribution."""
        name = dist_name(ep)
        return name is not None and normalise(name) == self._builtin_dist

    def add(self, eps: Iterable[EntryPoint]) -> None:
        """Register entry points of :attr:`group` lazily (others are ignored).

        Built-ins first, so a plugin with a built-in's name is refused whatever the
        discovery order; a second entry point for a taken name is a failure (the first wins).
        """
        eps = [ep for ep in eps if ep.group == self.group]
        for ep in sorted(eps, key=lambda e: not self.is_builtin(e)):  # stable: built-ins first
            builtin = self.is_builtin(ep)
            taken = ep.name in self.loaded or ep.name in self.lazy or ep.name in self.builtin_names
            if builtin and ep.name in self.plugins:  # a plugin got here first: the built-in wins
                plugin = self.plugins.pop(ep.name)
                for table in (self.lazy, self.loaded, self.origins):
                    table.pop(ep.name, None)
                self.failures[f"{ep.name} ({origin(plugin)})"] = self._builtin_clash(plugin)
                taken = False
            if taken:
                key = f"{ep.name} ({origin(ep)})"
                if ep.name in self.builtin_names:
                    self.failures[key] = self._builtin_clash(ep)
                else:
                    other = origin(self.lazy[ep.name]) if ep.name in self.lazy else \
                        self.origins.get(ep.name, "a direct registration")
                    self.failures[key] = (f"{describe(ep)}: duplicate {self.kind} name {ep.name!r}, already "
                                          f"provided by {other}; ignored")
                continue
            self.lazy[ep.name] = ep
            if builtin:
                self.builtin_names.add(ep.name)
            else:
                self.plugins[ep.name] = ep

    def load(self, name: str, check: Callable[[EntryPoint, Any], None] | None = None) -> bool:
        """Import lazy entry point ``name`` into :attr:`loaded`; False (a failure recorded) if it breaks.

        ``check(entry_point, obj)`` raises (TypeError, ValueError, ...) when the object is not
        what the group expects; that is recorded like an import failure.
        """
        ep = self.lazy.pop(name)
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not break the others
            last = traceback.extract_tb(exc.__traceback__)[-1:] or None
            inside = last and last[0].filename != __file__  # where the plugin failed, not where we noticed
            return self._fail(ep, exc, f" (at {last[0].filename}:{last[0].lineno})" if inside else "")
        try:
            if check is not None:
                check(ep, obj)
        except Exception as exc:  # noqa: BLE001 - the object is not what the group expects
            return self._fail(ep, exc, "")
        self.loaded[name] = obj
        self.origins[name] = origin(ep)
        return True

    def _fail(self, ep: EntryPoint, exc: BaseException, at: str) -> bool:
        self.failures[ep.name] = f"{describe(ep)}: {type(exc).__name__}: {first_line(exc)}{at}"
        self.plugins.pop(ep.name, None)
        return False

    def _builtin_clash(self, ep: EntryPoint) -> str:
        return f"{describe(ep)}: {ep.name!r} is a built-in {self.kind} name; refused (the built-in stays)"


def dist_name(ep: EntryPoint) -> str | None:
    """The distribution providing ``ep`` (None when unknown)."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None
    try:
        return getattr(dist, "name", None) or dist.metadata["Name"]
    except Exception:  # noqa: BLE001 - broken metadata is just "unknown distribution"
        return None


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def origin(ep: EntryPoint) -> str:
    """``module:attr [distribution]``."""
    name = dist_name(ep)
    return f"{ep.value} [{name}]" if name else ep.value


def describe(ep: EntryPoint) -> str:
    """``plugin DIST entry point 'NAME = module:attr'`` (one line, for errors)."""
    name = dist_name(ep)
    return f"{'plugin ' + name + ' ' if name else ''}entry point '{ep.name} = {ep.value}'"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
