"""Files, not physics: BIDS queries, metadata validation, NIfTI and derivative writing."""
