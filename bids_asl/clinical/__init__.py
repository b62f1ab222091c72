"""Analyses across runs of one subject, on written derivatives (layer 3: io + quant)."""
