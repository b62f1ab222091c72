"""Command line: ``bids-asl BIDS_DIR OUTPUT_DIR participant|group``."""
