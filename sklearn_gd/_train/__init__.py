"""The trainer: one epoch loop, its stopping rules and the state it trains."""
