"""Entry point of the ``smartturn`` plugin: registers the Smart Turn detector."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_smartturn.eou import SmartTurnEOU

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_eou(register: ProviderRegister[SmartTurnEOU]) -> None:
    """Register :class:`SmartTurnEOU` as ``smartturn``, the default turn detector."""
    register(SmartTurnEOU, default=True)
