"""Trust-slope identity (SPEC 2.11-2.18, DESIGN 6): DDH and DAH slopes, host records,
verification, pseudonyms, two-stage checks, recovery and content ids.

Pure: entropy bytes, ``random.Random`` instances and epochs are passed in by the caller.
"""
