"""Trust-slope identity (SPEC 2.11-2.18, DESIGN 6). Pure: entropy bytes, ``random.Random``
instances and epochs are passed in by the caller; nothing here reads a clock or does I/O.

- :mod:`.ddh`: the node's Dynamic Device Hash slope (genesis, per-epoch advance, link check).
- :mod:`.host`: host signing identity (:class:`~.host.LocalHost`), authority-signed host
  records and revocations, the read-only :class:`~.host.HostDirectory` protocol.
- :mod:`.host_secrets`: :class:`~.host_secrets.HostSecrets`, next-step secrets by commitment.
- :mod:`.dah`: the DAH step, genesis and :func:`~.dah.mutate` (entangled, signed entries),
  migration handoff and seal.
- :mod:`.slope`: :func:`~.slope.verify_slope`, :func:`~.slope.verify_agent`,
  :class:`~.slope.SlopeTracker`, equivocation proofs, delayed validation.
- :mod:`.reasons`: :class:`~.reasons.SlopeReason` and the :class:`~.reasons.SlopeRefusal` error.
- :mod:`.recovery`: quorum recovery tokens and rotation forward links.
- :mod:`.health`: the slope-health monitor (says when to rotate, and why) and rate-limited
  rotation through :mod:`.recovery`'s forward links; :mod:`.drift`: predictive drift bands.
- :mod:`.fid`: the isolated PKI fallback identity (session-scoped FID, closed fail).
- :mod:`.pseudonym`: per-hop handles; :mod:`.twostage`: header-then-body stream check;
  :mod:`.cah`: content anchor hashes and their bands; :mod:`.hashing`: tagged BLAKE2b.
"""
