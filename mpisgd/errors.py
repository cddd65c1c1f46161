"""Errors that mpisgd raises on every rank at once (never on just one)."""


class MPISGDError(RuntimeError):
    """Base class for mpisgd's own errors."""


class AgreementError(MPISGDError):
    """Ranks disagree on something that must be identical (model, options)."""


class UsageError(MPISGDError, ValueError):
    """The user asked for something that cannot be done (bad option, data too small)."""
