"""The exceptions of :mod:`datasets`: one root, :class:`DatasetsError`, and specific subclasses."""

from __future__ import annotations


class DatasetsError(Exception):
    """Root of every error raised by :mod:`datasets`."""


class ToolMissingError(DatasetsError):
    """An external program (ffmpeg, ffprobe, sox, apt-get, dpkg-deb, pip) is not installed."""


class FetchError(DatasetsError):
    """A package could not be downloaded or unpacked."""


class DecodeError(DatasetsError):
    """A media file does not decode completely."""


class ManifestError(DatasetsError):
    """A manifest is malformed, or does not match the files it describes."""


class AttackError(DatasetsError):
    """An attack chain names an unknown transform or carries invalid parameters."""


class SmokeCorpusError(DatasetsError):
    """The smoke corpus cannot be built or does not validate."""
