"""The one domain exception (pipx's PipxError, hatch's abort): caught once, in the CLI."""

from __future__ import annotations

import errno

# Exit-code contract (README): 2 = the user's mistake, 1 = the environment (ms-swift missing,
# disk full), anything else is the child's own code.
EXIT_USER = 2
EXIT_ENV = 1


class LorakitError(Exception):
    """A problem lorakit reports as text, without a traceback."""

    def __init__(self, message: str, *, hint: str | None = None, code: int = EXIT_USER):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class EnvironmentProblem(LorakitError):
    """Something about this machine, not the user's input (exit 1)."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint, code=EXIT_ENV)


# The disk refused the write, whatever the name: a full disk, an I/O error, a read-only mount or
# a size limit is this machine's problem (exit 1); a missing folder or a refused permission is the
# name the user chose (exit 2).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT, errno.EFBIG})
DISK_HINT = "the disk refused the write: free space there, check the mount (read-only? failing?), or write to another disk"


def write_failed(what: str, exc: OSError, hint: str) -> LorakitError:
    """`what` ('cannot write x.yaml') with the OS error, as the error the CLI raises: the disk's
    (exit 1) or the name the user chose (exit 2, with `hint`)."""
    code = errno.errorcode.get(exc.errno or 0)
    said = f"{what}: {exc.strerror or exc}" + (f" ({code})" if code else "")
    if exc.errno in DISK_ERRNOS:
        return EnvironmentProblem(said, hint=DISK_HINT)
    return LorakitError(said, hint=hint)
