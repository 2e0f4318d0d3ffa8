"""The data stage's error type and the record of a case it had to leave out."""

from __future__ import annotations

from dataclasses import dataclass

from custom.errors import InputError


class DataError(InputError):
    """A problem with a dataset the user can fix; the message names the file and the problem.

    It is an :class:`custom.errors.InputError`, so a bundle run that generates the demo data prints it
    as one line, and ``scripts/prepare_data.py`` turns it into ``error: <message>`` and a non-zero exit.
    """


@dataclass(frozen=True)
class BadCase:
    """A file that could not be used, and why (listed in summary.json under ``--skip-bad``)."""

    file: str
    reason: str

    @classmethod
    def from_error(cls, error: DataError, file: str) -> BadCase:
        """The bad case of ``error``, whose message is ``"<file>: <problem>"`` (``file`` when it is not)."""
        named, sep, reason = str(error).partition(": ")
        return cls(named, reason) if sep else cls(file, str(error))

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}
