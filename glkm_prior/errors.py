"""Exception types of the project.

Every problem a user can cause (bad file, bad shape, bad number, bad weights) is raised as a
subclass of :class:`GLKMError` with a message that names the offending thing, so the CLI can
print one line and exit non-zero.
"""


class GLKMError(Exception):
    """Base class of all errors this project raises on purpose."""


class ImageReadError(GLKMError):
    """An image file is missing, unreadable or corrupt."""


class InvalidInputError(GLKMError, ValueError):
    """An array or tensor has the wrong shape, dtype, range, or holds NaN/Inf."""


class KernelSizeError(InvalidInputError):
    """A kernel size is outside the supported range."""


class WeightsError(GLKMError):
    """Weights are missing, corrupt, or do not match their config."""


class PluginError(GLKMError):
    """A plugin, kernel branch or method name is unknown or misbehaves."""


def with_defaults(defaults: dict, options: dict, owner: str) -> dict:
    """``defaults`` updated with ``options``; keys that ``defaults`` lacks raise
    :class:`InvalidInputError` naming ``owner`` (e.g. ``"method 'fast'"``) and the unknown keys.
    The option check of every ``DEFAULTS``-dict configuration (``fast``, the L0 estimator)."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise InvalidInputError(f"unknown option(s) of {owner}: {', '.join(sorted(unknown))}")
    return {**defaults, **options}
