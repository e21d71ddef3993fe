"""Errors whose messages say what went wrong and how to fix it."""

from __future__ import annotations


class LyricgenError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""

    exit_code = 1


class ConfigError(LyricgenError):
    """A config file or override is invalid."""


class CorpusError(LyricgenError):
    """A corpus file is missing, unreadable or unusable."""


class RunDirError(LyricgenError):
    """A run directory is missing files, corrupt, or does not match its config."""


class UnknownTokenError(LyricgenError):
    """A start text contains something the vocabulary cannot express."""


class GenerationError(LyricgenError):
    """Generation options are invalid."""


class TrainingError(LyricgenError):
    """Training cannot continue (for example the loss became NaN)."""


class TrainingInterrupted(LyricgenError):
    """Training was stopped by a signal after saving a resumable checkpoint."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MelodyError(LyricgenError):
    """A melody (MIDI file or numbered notation) cannot be read or fitted."""
