"""tscallbacks: infrastructure-as-code for Verizon ThingSpace callback listeners."""

__version__ = "0.1.0"
