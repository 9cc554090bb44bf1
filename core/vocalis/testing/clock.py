"""The virtual-time event loop, for tests (it lives in :mod:`vocalis.clock`).

``vocalis talk --fast`` runs real models on the same loop, so the loop is
part of the core; the test kit re-exports it under its old name.
"""

from vocalis.clock import (
    VirtualTimeDeadlock,
    VirtualTimeLimitExceeded,
    VirtualTimeLoop,
    run_virtual,
    virtual_time,
)

__all__ = [
    "VirtualTimeDeadlock",
    "VirtualTimeLimitExceeded",
    "VirtualTimeLoop",
    "run_virtual",
    "virtual_time",
]
