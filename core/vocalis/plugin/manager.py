"""Finding, loading and isolating plugins with pluggy and entry points.

:func:`make_plugin_manager` builds a fresh :class:`VocalisPluginManager`; there
is no module-level manager. Loading is fault-isolated: a plugin whose import
fails, whose hook raises, or which implements a misspelled hook is recorded
with its error and unregistered, and every other plugin still loads.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import traceback
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pluggy
from loguru import logger

from vocalis.plugin import hookspecs
from vocalis.plugin.commands import COMMANDS_HOOK
from vocalis.plugin.registry import PluginOrigin, PluginRecord, ProviderRegister, Registry
from vocalis.providers.base import ProviderKind
from vocalis.settings import VocalisSettings

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
BUILTIN_PLUGIN = "builtins"


class VocalisPluginManager(pluggy.PluginManager):
    """A pluggy manager that also owns the provider registry it fills.

    Any module attribute named ``vocalis_*`` counts as a hook implementation,
    marked or not, so a misspelled hook name is caught instead of ignored.
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._registry: Registry | None = None

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(f"{hookspecs.PROJECT_NAME}_"):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {}  # type: ignore[return-value]  # an empty HookimplOpts: pluggy fills defaults
        return opts

    def add_plugin(self, module: Any, name: str, origin: PluginOrigin | None = None) -> PluginRecord:
        """Register one plugin object, validating its hooks.

        Args:
            module: The plugin (a module or any object with hook functions).
            name: Its plugin name.
            origin: Distribution info; defaults to the name alone.

        Returns:
            The plugin's record; on validation failure its status is error and
            the plugin is not registered.
        """
        record = PluginRecord(name, origin or PluginOrigin(name))
        self.records[name] = record
        self._registry = None
        try:
            self.register(module, name=name)
        except Exception as exc:  # pluggy.PluginValidationError, ValueError
            record.fail(f"invalid plugin: {exc}")
            return record
        unknown = [caller.name for caller in (self.get_hookcallers(module) or []) if caller.spec is None]
        if unknown:
            self.unregister(module)
            for hook in unknown:
                import difflib  # only for a misspelt hook

                close = difflib.get_close_matches(hook, _known_hooks(), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                record.fail(f"unknown hook {hook!r}{hint}")
        return record

    @property
    def registry(self) -> Registry:
        """The provider registry, built from the plugins' hooks on first use."""
        if self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> Registry:
        registry = Registry()
        for record in self.records.values():
            record.providers.clear()
        for kind in ProviderKind:
            hook = getattr(self.hook, kind.hook_name)
            # pluggy stops at the first raising implementation, so each
            # plugin's hook is called on its own to keep failures isolated.
            for impl in hook.get_hookimpls():
                record = self.records.get(impl.plugin_name) or PluginRecord(
                    impl.plugin_name, PluginOrigin(impl.plugin_name)
                )
                if impl.hookwrapper or impl.wrapper:
                    # A wrapper is never given the register: it would register nothing.
                    record.fail(f"{kind.hook_name} must be a plain hookimpl, not a wrapper", kind)
                    continue
                register: ProviderRegister[Any] = ProviderRegister(registry, kind, record.origin)
                try:
                    impl.function(*[register for _ in impl.argnames])
                except Exception as exc:
                    record.fail(f"{kind.hook_name} raised {type(exc).__name__}: {exc}", kind)
                    logger.debug("{}", "".join(traceback.format_exception(exc)))
                record.providers.extend(register.registered)
        self.check_pending()
        return registry


def _known_hooks() -> list[str]:

    return [kind.hook_name for kind in ProviderKind] + [COMMANDS_HOOK]


def _dist_of(ep: importlib.metadata.EntryPoint) -> PluginOrigin:
    dist = ep.dist
    if dist is None:
        return PluginOrigin(ep.name)
    return PluginOrigin(ep.name, dist.metadata["Name"], dist.version)


def iter_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The ``vocalis`` entry points installed, first one per name."""
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def make_plugin_manager(
    settings: VocalisSettings | None = None,
    *,
    plugins: Iterable[tuple[str, ModuleType | object]] = (),
    autoload: bool | None = None,
) -> VocalisPluginManager:
    """Build a fresh plugin manager and load plugins into it.

    Order: the built-in plugin, then entry points of the ``vocalis`` group,
    then ``plugins`` passed in. ``VOCALIS_PLUGINS`` limits entry points to the
    names listed, ``VOCALIS_DISABLED_PLUGINS`` blocks names (built-ins too) and
    ``VOCALIS_DISABLE_PLUGIN_AUTOLOAD`` skips entry points entirely.

    Args:
        settings: Core settings; read from the environment when omitted.
        plugins: Extra ``(name, plugin_object)`` pairs to register, e.g. in
            tests or in an application that ships its own providers.
        autoload: Override ``disable_plugin_autoload`` from settings.

    Returns:
        The manager; ``manager.registry`` holds the providers and
        ``manager.records`` each plugin's status.
    """
    settings = settings or VocalisSettings()
    blocked = set(settings.disabled_plugins)
    allowed = set(settings.plugins) if settings.plugins is not None else None
    if autoload is None:
        autoload = not settings.disable_plugin_autoload

    pm = VocalisPluginManager()
    for name in blocked:
        pm.set_blocked(name)

    if BUILTIN_PLUGIN not in blocked:
        from vocalis.plugin import builtins

        pm.add_plugin(builtins, BUILTIN_PLUGIN, PluginOrigin(BUILTIN_PLUGIN, "vocalis", _version()))

    if autoload:
        for ep in iter_entry_points():
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                logger.debug("plugin {!r} skipped by settings", ep.name)
                continue
            if pm.has_plugin(ep.name) or ep.name in pm.records:
                continue
            origin = _dist_of(ep)
            try:
                module = ep.load()
            except BaseException as exc:  # a plugin may even call sys.exit on import
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record = PluginRecord(ep.name, origin)
                pm.records[ep.name] = record
                record.fail(f"import of {ep.value!r} failed: {type(exc).__name__}: {exc}")
                continue
            pm.add_plugin(module, ep.name, origin)

    for name, module in plugins:
        if name not in blocked:
            pm.add_plugin(module, name)
    pm.registry  # noqa: B018 - run the hooks now so every record is complete
    return pm


def _version() -> str | None:
    try:
        return importlib.metadata.version("vocalis")
    except importlib.metadata.PackageNotFoundError:
        return None
