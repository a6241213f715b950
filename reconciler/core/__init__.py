"""Shared value types: errors, the model, secrets, the family table and the service catalog."""
