"""The built-in ThingSpace simulator: a local, ThingSpace-compatible callback API."""

from __future__ import annotations

from reconciler.simulator.api import SANDBOX_ACCOUNT
from reconciler.simulator.faults import FaultController, FaultSettings
from reconciler.simulator.server import Simulator, SimulatorConfig
from reconciler.simulator.state import RequestRecord

__all__ = [
    "SANDBOX_ACCOUNT",
    "FaultController",
    "FaultSettings",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
]
