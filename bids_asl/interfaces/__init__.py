"""Thin nipype interfaces: load (io) → compute (quant) → save (io)."""
