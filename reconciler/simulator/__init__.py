"""The built-in ThingSpace simulator: a local, ThingSpace-compatible callback API."""

from __future__ import annotations

from reconciler.simulator.api import SANDBOX_ACCOUNT
from reconciler.simulator.embedded import DEFAULT_STATE_PATH, embedded_simulator
from reconciler.simulator.faults import FaultController, FaultSettings
from reconciler.simulator.server import Simulator, SimulatorConfig
from reconciler.simulator.state import RequestRecord

__all__ = [
    "DEFAULT_STATE_PATH",
    "SANDBOX_ACCOUNT",
    "FaultController",
    "FaultSettings",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "embedded_simulator",
]
