"""The simulator's one error type (it shares none with the product it tests)."""

from __future__ import annotations


class SimulatorError(Exception):
    """A refused setting, state file or request. ``str()`` is one line with no secret.

    Inside a request handler it means "the caller's mistake" and becomes a 400 answer;
    from the constructors (:class:`~reconciler.simulator.server.Simulator`,
    :class:`~reconciler.simulator.faults.FaultSettings`) it is for whoever embeds the
    simulator to report (the ``tscallbacks`` CLI turns it into its usage error).
    """
