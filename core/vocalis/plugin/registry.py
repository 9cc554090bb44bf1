"""The provider registry: which provider classes exist and who registered them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from loguru import logger

from vocalis.providers.base import Provider, ProviderKind
from vocalis.settings import provider_env_prefix, validate_name

P = TypeVar("P", bound=Provider)

_BASE_CLASSES: dict[ProviderKind, str] = {
    ProviderKind.STT: "vocalis.providers.stt:STT",
    ProviderKind.LLM: "vocalis.providers.llm:LLM",
    ProviderKind.TTS: "vocalis.providers.tts:TTS",
    ProviderKind.VAD: "vocalis.providers.vad:VAD",
    ProviderKind.EOU: "vocalis.providers.eou:EOU",
    ProviderKind.TOOLS: "vocalis.providers.tools:ToolSource",
    ProviderKind.REALTIME: "vocalis.providers.realtime:RealtimeModel",
    ProviderKind.TRANSPORT: "vocalis.providers.transport:Transport",
    ProviderKind.SESSION_STORE: "vocalis.providers.session_store:SessionStore",
}


def base_class_for(kind: ProviderKind | str) -> type[Provider]:
    """The base class every provider of ``kind`` must subclass."""
    module_name, _, attr = _BASE_CLASSES[ProviderKind(kind)].partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


class RegistrationError(Exception):
    """A provider could not be registered (duplicate name, wrong type, ...)."""


class UnknownProviderError(LookupError):
    """No provider of that kind and name is registered."""


@dataclass(frozen=True)
class PluginOrigin:
    """Where a registration came from.

    Attributes:
        plugin: The plugin's name (the entry-point name, or ``"builtins"``).
        distribution: The distribution that installed it, if known.
        version: That distribution's version, if known.
    """

    plugin: str
    distribution: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ProviderEntry:
    """One registered provider class.

    Attributes:
        kind: The provider kind.
        name: The canonical name.
        cls: The provider class.
        origin: Which plugin registered it.
        aliases: Other names that resolve to it.
        default: Offered as the kind's default when several are installed
            and settings name none (the offline stack sets it).
    """

    kind: ProviderKind
    name: str
    cls: type[Provider]
    origin: PluginOrigin
    aliases: tuple[str, ...] = ()
    default: bool = False

    @property
    def env_prefix(self) -> str:
        """The settings prefix this provider is required to use."""
        return provider_env_prefix(self.kind.value, self.name)


@dataclass
class Registry:
    """All provider classes known to one plugin manager.

    Lookups accept a canonical name or an alias. The registry is filled by
    :class:`ProviderRegister` objects handed to the plugins' hooks.
    """

    _entries: dict[tuple[ProviderKind, str], ProviderEntry] = field(default_factory=dict)
    _aliases: dict[tuple[ProviderKind, str], str] = field(default_factory=dict)

    def add(self, entry: ProviderEntry) -> None:
        """Add an entry, rejecting any name or alias that is already taken.

        Raises:
            RegistrationError: The name or an alias is taken; the message
                names both plugins.
        """
        for candidate in (entry.name, *entry.aliases):
            existing = self._lookup(entry.kind, candidate)
            if existing is not None:
                raise RegistrationError(
                    f"{entry.kind.value} provider name {candidate!r} from plugin "
                    f"{entry.origin.plugin!r} is already registered by plugin "
                    f"{existing.origin.plugin!r} ({existing.cls.__module__}."
                    f"{existing.cls.__qualname__})"
                )
        self._entries[(entry.kind, entry.name)] = entry
        for alias in entry.aliases:
            self._aliases[(entry.kind, alias)] = entry.name

    def _lookup(self, kind: ProviderKind, name: str) -> ProviderEntry | None:
        key = (kind, self._aliases.get((kind, name), name))
        return self._entries.get(key)

    def get(self, kind: ProviderKind | str, name: str) -> ProviderEntry:
        """Find a provider by kind and name or alias.

        Raises:
            UnknownProviderError: Nothing of that kind has that name; the
                message lists what is available.
        """
        kind = ProviderKind(kind)
        entry = self._lookup(kind, name)
        if entry is None:
            available = ", ".join(sorted(self.names(kind))) or "none installed"
            raise UnknownProviderError(f"no {kind.value} provider named {name!r} (available: {available})")
        return entry

    def create(self, kind: ProviderKind | str, name: str, **overrides: object) -> Provider:
        """Instantiate a registered provider with its settings.

        Args:
            kind: The provider kind.
            name: Its name or alias.
            **overrides: Settings values that win over the environment.

        Returns:
            A new provider instance.
        """
        # Called as the provider declares it: a plugin's own __init__ may take only overrides.
        factory: Callable[..., Provider] = self.get(kind, name).cls
        return factory(**overrides)

    def default_name(self, kind: ProviderKind | str) -> str | None:
        """The provider to use for ``kind`` when nothing is configured.

        The only one installed, else the only one registered as a default.
        """
        entries = self.entries(kind)
        if len(entries) == 1:
            return entries[0].name
        defaults = [e.name for e in entries if e.default]
        return defaults[0] if len(defaults) == 1 else None

    def names(self, kind: ProviderKind | str) -> list[str]:
        """Canonical names registered for ``kind``, in registration order."""
        kind = ProviderKind(kind)
        return [name for (k, name) in self._entries if k is kind]

    def entries(self, kind: ProviderKind | str | None = None) -> list[ProviderEntry]:
        """All entries, or those of one kind, in registration order."""
        if kind is None:
            return list(self._entries.values())
        kind = ProviderKind(kind)
        return [e for e in self._entries.values() if e.kind is kind]

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return self._lookup(ProviderKind(kind), name) is not None

    def __iter__(self) -> Iterator[ProviderEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)


class ProviderRegister(Generic[P]):
    """The typed ``register`` object a ``vocalis_register_<kind>`` hook receives.

    Calling it registers one provider class for this hook's kind, attributed
    to the plugin whose hook is running.
    """

    def __init__(self, registry: Registry, kind: ProviderKind, origin: PluginOrigin) -> None:
        self.registry = registry
        self.kind = kind
        self.origin = origin
        self.registered: list[ProviderEntry] = []

    def __call__(
        self,
        cls: type[P],
        name: str | None = None,
        *,
        aliases: Sequence[str] = (),
        default: bool = False,
    ) -> ProviderEntry:
        """Register ``cls``.

        Args:
            cls: A provider class (not an instance) subclassing this kind's
                base class.
            name: The name to register under; defaults to ``cls.name``.
            aliases: Further names that resolve to the same class.
            default: Propose it as the kind's default provider.

        Returns:
            The registry entry.

        Raises:
            RegistrationError: Not a class of the right kind, a bad name, or a
                name that another plugin took.
        """
        base = base_class_for(self.kind)
        if not isinstance(cls, type):
            raise RegistrationError(
                f"plugin {self.origin.plugin!r} registered {cls!r} as a {self.kind.value} "
                "provider: register the class, not an instance"
            )
        if not issubclass(cls, base):
            raise RegistrationError(
                f"plugin {self.origin.plugin!r} registered {cls.__qualname__} as a "
                f"{self.kind.value} provider, but it does not subclass "
                f"{base.__module__}.{base.__qualname__}"
            )
        name = name or cls.name
        try:
            validate_name(name)
            for alias in aliases:
                validate_name(alias)
        except ValueError as exc:
            raise RegistrationError(f"plugin {self.origin.plugin!r}, {cls.__qualname__}: {exc}") from None
        if not cls.name:
            cls.name = name
        entry = ProviderEntry(self.kind, name, cls, self.origin, tuple(aliases), default)
        self.registry.add(entry)
        self.registered.append(entry)
        return entry


Status = Literal["ok", "error"]


@dataclass
class PluginRecord:
    """What happened when one plugin was loaded.

    Attributes:
        name: The plugin name (entry-point name, or the name given on register).
        origin: Distribution and version that installed it.
        status: ``"ok"``, or ``"error"`` when import, validation or a hook failed.
        errors: One message per failure; empty when status is ok.
        kinds_failed: The provider kinds whose hook raised.
        providers: Entries this plugin registered.
    """

    name: str
    origin: PluginOrigin
    status: Status = "ok"
    errors: list[str] = field(default_factory=list)
    kinds_failed: list[ProviderKind] = field(default_factory=list)
    providers: list[ProviderEntry] = field(default_factory=list)

    def fail(self, message: str, kind: ProviderKind | None = None) -> None:
        self.status = "error"
        self.errors.append(message)
        if kind is not None:
            self.kinds_failed.append(kind)
        logger.error("plugin {!r} failed: {}", self.name, message)
