"""The corpus manifest: one JSON object per line, one line per file in the corpus.

A corpus directory holds ``manifest.jsonl`` and the media under ``images/``, ``music/``,
``speech/``, ``video/`` and ``assembled/``. Every file below those directories appears in
the manifest exactly once, and every manifest line names a file that exists with the
recorded SM3 digest (:meth:`Manifest.validate`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from chain.crypto.sm3 import sm3_file
from datasets.errors import ManifestError

Kind = Literal["image", "audio", "video"]
Collection = Literal["images", "music", "speech", "video"]
Role = Literal["original", "distractor"]

MANIFEST_NAME = "manifest.jsonl"
MEDIA_DIRS = ("images", "music", "speech", "video", "assembled")
_KINDS = {"image", "audio", "video"}
_COLLECTIONS = {"images", "music", "speech", "video"}
_ROLES = {"original", "distractor"}


@dataclass(frozen=True)
class Entry:
    """One file of a corpus.

    Attributes
    ----------
    id : str
        Stable identifier, derived from the content digest (``img-``, ``aud-``, ``vid-`` prefix).
    kind : {"image", "audio", "video"}
        Media kind.
    collection : {"images", "music", "speech", "video"}
        Which corpus the file belongs to.
    role : {"original", "distractor"}
        ``original`` files are meant to be registered; ``distractor`` files never are and
        serve to measure false-positive rates.
    path : str
        Path of the file relative to the corpus root.
    digest : str
        SM3 of the file's bytes, hex.
    size : int
        Bytes.
    package, version, origin : str
        Source package, its version, and ``"apt"`` or ``"pypi"``; for assembled files the
        packages of their inputs joined with ``+``.
    license : str
        The license line from the package's copyright file (or wheel metadata).
    original_path : str
        Path of the file inside the package; for assembled files a description.
    duration : float or None
        Seconds, for audio and video.
    width, height : int or None
        Pixels, for images and video.
    fps : float or None
        Frames per second, for video.
    sample_rate, channels : int or None
        For audio, and video with sound.
    assembled : bool
        True for files this project generated (slideshows, frame sequences, frames); their
        ``recipe`` says how and ``derived_from`` from which entries or package paths.
    recipe : dict
        Generation parameters of assembled files, empty otherwise.
    derived_from : list of str
        Entry ids (or package paths) an assembled file was made from.
    """

    id: str
    kind: Kind
    collection: Collection
    role: Role
    path: str
    digest: str
    size: int
    package: str
    version: str
    origin: str
    license: str
    original_path: str
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    assembled: bool = False
    recipe: dict[str, Any] = field(default_factory=dict)
    derived_from: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """One manifest line (without newline), keys in a fixed order."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """Build an entry from a decoded manifest line, checking names and types.

        Raises
        ------
        ManifestError
            On a missing or unknown field or an invalid value.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ManifestError(f"unknown manifest field(s) {sorted(unknown)}; is this a newer manifest?")
        required = ("id", "kind", "collection", "role", "path", "digest", "size", "package", "version")
        missing = [n for n in required if n not in data]
        if missing:
            raise ManifestError(f"manifest line lacks field(s) {missing}")
        if data["kind"] not in _KINDS or data["collection"] not in _COLLECTIONS or data["role"] not in _ROLES:
            raise ManifestError(
                f"entry {data.get('id')!r}: bad kind/collection/role "
                f"{data['kind']!r}/{data['collection']!r}/{data['role']!r}"
            )
        digest = data["digest"]
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise ManifestError(f"entry {data['id']!r}: digest must be 64 lowercase hex digits")
        path = data["path"]
        if not isinstance(path, str) or path.startswith("/") or ".." in Path(path).parts:
            raise ManifestError(f"entry {data['id']!r}: path {path!r} must be relative to the corpus root")
        if not isinstance(data["size"], int) or data["size"] < 0:
            raise ManifestError(f"entry {data['id']!r}: size must be a non-negative integer")
        data.setdefault("origin", "apt")
        data.setdefault("license", "")
        data.setdefault("original_path", "")
        try:
            return cls(**data)
        except TypeError as exc:  # pragma: no cover - guarded by the checks above
            raise ManifestError(f"entry {data.get('id')!r}: {exc}") from exc


def parse_lines(lines: Iterable[str], source: str = "<manifest>") -> list[Entry]:
    """Parse manifest lines; blank lines are ignored.

    Raises
    ------
    ManifestError
        On invalid JSON, a non-object line, bad fields or a duplicate id.

    Examples
    --------
    >>> line = ('{"id": "img-1", "kind": "image", "collection": "images", "role": "original", '
    ...         '"path": "images/img-1.jpg", "digest": "' + "0" * 64 + '", "size": 3, '
    ...         '"package": "p", "version": "1"}')
    >>> [e.id for e in parse_lines([line])]
    ['img-1']
    >>> parse_lines(["{not json"])
    Traceback (most recent call last):
    ...
    datasets.errors.ManifestError: <manifest>:1: not valid JSON (Expecting property name ...)
    """
    entries: list[Entry] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{source}:{number}: each line must be a JSON object")
        try:
            entry = Entry.from_dict(data)
        except ManifestError as exc:
            raise ManifestError(f"{source}:{number}: {exc}") from None
        if entry.id in seen:
            raise ManifestError(f"{source}:{number}: duplicate id {entry.id!r}")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def load(path: str | os.PathLike[str]) -> list[Entry]:
    """Load a manifest file (or the ``manifest.jsonl`` inside a corpus directory).

    Raises
    ------
    ManifestError
        If the file is missing or malformed.
    """
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {p}: {exc.strerror}; build the corpus first") from None
    return parse_lines(text.splitlines(), str(p))


def write(path: Path, entries: Iterable[Entry]) -> None:
    """Write entries to ``path`` atomically (temporary file, then rename).

    The temporary file's name is unique to the call, so two processes writing the same
    manifest at once (two test runs building one cache) each rename a whole file of
    their own; the last rename wins.
    """
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for entry in entries:
                fh.write(entry.to_json() + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Manifest:
    """The entries of one corpus directory, with look-ups and validation.

    Parameters
    ----------
    root : Path
        Corpus directory.
    entries : iterable of Entry
        Its entries.
    """

    def __init__(self, root: Path, entries: Iterable[Entry]) -> None:
        self.root = Path(root)
        self.entries = list(entries)
        self._by_id = {e.id: e for e in self.entries}
        if len(self._by_id) != len(self.entries):
            raise ManifestError("manifest has duplicate ids")

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Manifest:
        """The manifest of the corpus at ``root``."""
        return cls(Path(root), load(Path(root) / MANIFEST_NAME))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __getitem__(self, entry_id: str) -> Entry:
        try:
            return self._by_id[entry_id]
        except KeyError:
            raise ManifestError(f"no entry {entry_id!r} in the manifest of {self.root}") from None

    def path(self, entry: Entry | str) -> Path:
        """Absolute path of an entry's file."""
        e = self[entry] if isinstance(entry, str) else entry
        return self.root / e.path

    def select(
        self,
        *,
        kind: str | None = None,
        collection: str | None = None,
        role: str | None = None,
        assembled: bool | None = None,
    ) -> list[Entry]:
        """Entries matching every given criterion, in manifest order."""
        return [
            e
            for e in self.entries
            if (kind is None or e.kind == kind)
            and (collection is None or e.collection == collection)
            and (role is None or e.role == role)
            and (assembled is None or e.assembled == assembled)
        ]

    def save(self) -> Path:
        """Write ``manifest.jsonl`` in the corpus root atomically and return its path."""
        path = self.root / MANIFEST_NAME
        write(path, self.entries)
        return path

    def validate(self, *, check_digests: bool = True) -> None:
        """Check that manifest and files agree.

        Every entry's file exists with the recorded size (and SM3 digest), and every file
        in the media directories is listed.

        Raises
        ------
        ManifestError
            Naming the first few discrepancies.
        """
        problems: list[str] = []
        listed = set()
        for e in self.entries:
            p = self.root / e.path
            listed.add(p.resolve())
            if not p.is_file():
                problems.append(f"{e.id}: file {e.path} is missing")
                continue
            if p.stat().st_size != e.size:
                problems.append(f"{e.id}: {e.path} has {p.stat().st_size} bytes, manifest says {e.size}")
            elif check_digests and sm3_file(p).hex() != e.digest:
                problems.append(f"{e.id}: {e.path} does not match its SM3 digest (modified or corrupted)")
        for sub in MEDIA_DIRS:
            d = self.root / sub
            if d.is_dir():
                for f in sorted(d.rglob("*")):
                    if f.is_file() and f.resolve() not in listed:
                        problems.append(f"{f.relative_to(self.root)} is not in the manifest")
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ManifestError(
                f"corpus {self.root} does not match its manifest: "
                + "; ".join(problems[:5])
                + more
                + "; rebuild it with `rongxin datasets build`"
            )
