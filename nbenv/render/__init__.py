"""Pure renderers: plans in, file texts out (deterministic: no timestamps, stable order)."""
