"""The built-in ThingSpace simulator: a local, ThingSpace-compatible callback API.

It imports nothing from the rest of ``reconciler``: it is the oracle the product's
client is tested against, so its tables, errors and types are its own.
"""

from __future__ import annotations

from reconciler.simulator.callbacks import SANDBOX_ACCOUNT
from reconciler.simulator.credentials import ClientCredentials, SimulatorCredentials
from reconciler.simulator.errors import SimulatorError
from reconciler.simulator.faults import FaultController, FaultSettings
from reconciler.simulator.server import Simulator, SimulatorConfig
from reconciler.simulator.state import RequestCounts, RequestRecord

__all__ = [
    "SANDBOX_ACCOUNT",
    "ClientCredentials",
    "FaultController",
    "FaultSettings",
    "RequestCounts",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "SimulatorCredentials",
    "SimulatorError",
]
