"""The engine: observe current state, diff it against desired state into a frozen plan, save
plans, and apply them."""
