"""Names of a package loaded on first use (PEP 562).

Importing a light module of a package (``model.spec``, ``twin.record``) then does not import
PyMC: the command line's ``--help`` and the service's hot path never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_names(package: str, home: dict[str, str], namespace: dict[str, Any]
               ) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``.

    It imports ``name`` from ``<package>.<home[name]>`` on first use and keeps it in the
    package's ``namespace``.
    """

    def __getattr__(name: str) -> Any:
        if name in home:
            value = getattr(import_module(f"{package}.{home[name]}"), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
