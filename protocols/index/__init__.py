"""Slope-band alias index: bands and anchor groups, anchor membership, resolution."""
