"""The recipe: which packages ship which media, and how each file is classed.

Adding a source is adding a :class:`Source` to :data:`SOURCES` (see ``docs/datasets.md``).
Paths are globs relative to the unpacked package root. ``smoke=True`` sources make up the
smoke corpus (about 70 MB of downloads in all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from datasets.errors import DatasetsError
from datasets.manifest import Role

Origin = Literal["apt", "pypi"]
Mode = Literal["files", "frames"]


@dataclass(frozen=True)
class Source:
    """Media taken from one package.

    Attributes
    ----------
    key : str
        Unique name of this source (several sources may read one package).
    package : str
        Debian package name, or a PyPI requirement pinned with ``==``.
    origin : {"apt", "pypi"}
        Which registry ships it.
    collection : {"images", "music", "speech", "video"}
        Corpus the files join.
    role : {"original", "distractor"}
        Default role of the files.
    include : tuple of str
        Globs (``**`` allowed) relative to the unpacked package.
    exclude : tuple of str
        Globs removed from ``include``'s matches.
    holdout : int
        If > 0, one file in ``holdout`` (chosen by digest) becomes a distractor.
    mode : {"files", "frames"}
        ``frames``: each matching *directory* is a real camera frame sequence encoded into
        one video at ``fps``.
    fps : float
        Frame rate for ``frames`` sources.
    smoke : bool
        Part of the smoke corpus.
    smoke_limit : int
        In the smoke corpus, take at most this many files (0 = all).
    """

    key: str
    package: str
    origin: Origin
    collection: str
    role: Role
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    holdout: int = 0
    mode: Mode = "files"
    fps: float = 25.0
    smoke: bool = False
    smoke_limit: int = 0
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        kinds = {"images": "image", "music": "audio", "speech": "audio", "video": "video"}
        if self.collection not in kinds:
            raise DatasetsError(f"source {self.key}: unknown collection {self.collection!r}")
        object.__setattr__(self, "kind", kinds[self.collection])

    @property
    def package_name(self) -> str:
        """The package name without a version pin."""
        return self.package.split("==")[0]


#: One music track in this many (chosen by digest) is held out as a distractor.
HOLDOUT = 10
IMG = ("*.jpg", "*.jpeg", "*.png", "*.gif", "*.webp")
_A: Origin = "apt"


def _g(prefix: str, patterns: tuple[str, ...] = IMG) -> tuple[str, ...]:
    return tuple(f"{prefix}/{p}" for p in patterns)


SOURCES: tuple[Source, ...] = (
    # ---- photos (originals) -------------------------------------------------------------------
    Source(
        "palapeli", "palapeli-data", _A, "images", "original", _g("usr/share/palapeli/collection"), smoke=True
    ),
    Source(
        "dlib-photos",
        "libdlib19.1",
        _A,
        "images",
        "original",
        (
            *_g("usr/share/doc/libdlib19.1/examples/faces"),
            *_g("usr/share/doc/libdlib19.1/examples/johns/**"),
            "usr/share/doc/libdlib19.1/examples/mmod_cars_test_image*.jpg",
        ),
        smoke=True,
        smoke_limit=12,
    ),
    Source(
        "scratch-backgrounds",
        "scratch",
        _A,
        "images",
        "original",
        _g("usr/share/scratch/Media/Backgrounds/*"),
    ),
    Source(
        "opencv-photos",
        "opencv-doc",
        _A,
        "images",
        "original",
        ("usr/share/doc/opencv-doc/examples/data/*.jpg",),
        exclude=("*Logo*", "*logo*", "*text*", "*ela_modified*"),
    ),
    Source("kphotoalbum", "kphotoalbum", _A, "images", "original", ("usr/share/kphotoalbum/demo/*.jpg",)),
    Source(
        "mate-nature", "mate-backgrounds", _A, "images", "original", _g("usr/share/backgrounds/mate/nature")
    ),
    Source(
        "pd-photos",
        "pd-extendedview",
        _A,
        "images",
        "original",
        ("usr/share/doc/pd-extendedview/media/*.jpg",),
    ),
    Source(
        "renpy-backgrounds",
        "renpy-demo",
        _A,
        "images",
        "original",
        tuple(f"usr/share/games/renpy/demo/game/images/bg {p}" for p in IMG),
    ),
    Source(
        "skimage-photos",
        "scikit-image==0.26.0",
        "pypi",
        "images",
        "original",
        tuple(
            f"skimage/data/{n}"
            for n in (
                "astronaut.png",
                "brick.png",
                "camera.png",
                "chelsea.png",
                "coffee.png",
                "coins.png",
                "grass.png",
                "gravel.png",
                "horse.png",
                "hubble_deep_field.jpg",
                "moon.png",
                "motorcycle_left.png",
                "retina.jpg",
                "rocket.jpg",
                "page.png",
            )
        ),
    ),
    # ---- distractor images: artwork, drawings, screenshots from other packages -----------------
    Source(
        "kivy-images",
        "python-kivy-examples",
        _A,
        "images",
        "distractor",
        _g("usr/share/kivy-examples/**"),
        smoke=True,
    ),
    Source(
        "palapeli-docs",
        "palapeli-data",
        _A,
        "images",
        "distractor",
        ("usr/share/doc/HTML/en/palapeli/*.png",),
        smoke=True,
    ),
    Source(
        "mecavideo-snaps",
        "python3-mecavideo",
        _A,
        "images",
        "distractor",
        ("usr/share/pymecavideo/data/help/snap*.png",),
        smoke=True,
    ),
    Source(
        "scratch-costumes", "scratch", _A, "images", "distractor", _g("usr/share/scratch/Media/Costumes/*")
    ),
    Source(
        "renpy-artwork",
        "renpy-demo",
        _A,
        "images",
        "distractor",
        _g("usr/share/games/renpy/demo/game/images"),
        exclude=("bg *",),
    ),
    Source(
        "mate-artwork",
        "mate-backgrounds",
        _A,
        "images",
        "distractor",
        (*_g("usr/share/backgrounds/mate/abstract"), *_g("usr/share/backgrounds/mate/desktop")),
    ),
    Source(
        "opencv-figures",
        "opencv-doc",
        _A,
        "images",
        "distractor",
        ("usr/share/doc/opencv-doc/examples/data/*.png",),
    ),
    # ---- music ---------------------------------------------------------------------------------
    Source(
        "drascula",
        "drascula-music",
        _A,
        "music",
        "original",
        ("usr/share/scummvm/drascula/audio/*.ogg",),
        holdout=HOLDOUT,
        smoke=True,
        smoke_limit=8,
    ),
    Source(
        "wesnoth",
        "wesnoth-1.16-music",
        _A,
        "music",
        "original",
        ("usr/share/games/wesnoth/1.16/data/core/music/*.ogg",),
        holdout=HOLDOUT,
    ),
    Source(
        "hedgewars",
        "hedgewars-data",
        _A,
        "music",
        "original",
        ("usr/share/games/hedgewars/Data/Music/*.ogg",),
        holdout=HOLDOUT,
    ),
    Source(
        "singularity",
        "singularity-music",
        _A,
        "music",
        "original",
        ("usr/share/games/singularity/music/**/*.ogg",),
        holdout=HOLDOUT,
    ),
    Source(
        "fof-muldjord",
        "fretsonfire-songs-muldjord",
        _A,
        "music",
        "original",
        ("usr/share/games/fretsonfire/data/songs/**/song.ogg",),
        holdout=HOLDOUT,
    ),
    Source(
        "fof-sectoid",
        "fretsonfire-songs-sectoid",
        _A,
        "music",
        "original",
        ("usr/share/games/fretsonfire/data/songs/**/song.ogg",),
        holdout=HOLDOUT,
    ),
    # distractor audio: loops, effects and jingles that are not registered music
    Source(
        "kivy-sounds",
        "python-kivy-examples",
        _A,
        "music",
        "distractor",
        ("usr/share/kivy-examples/audio/*.wav",),
        smoke=True,
    ),
    Source(
        "scratch-sounds",
        "scratch",
        _A,
        "music",
        "distractor",
        ("usr/share/scratch/Media/Sounds/**/*.wav", "usr/share/scratch/Media/Sounds/**/*.mp3"),
    ),
    Source(
        "renpy-sounds", "renpy-demo", _A, "music", "distractor", ("usr/share/games/renpy/demo/game/*.ogg",)
    ),
    # ---- speech --------------------------------------------------------------------------------
    Source(
        "codec2",
        "codec2-examples",
        _A,
        "speech",
        "original",
        ("usr/share/codec2/wav/*.wav",),
        smoke=True,
        smoke_limit=8,
    ),
    Source(
        "fillets-cs",
        "fillets-ng-data-cs",
        _A,
        "speech",
        "original",
        ("usr/share/games/fillets-ng/sound/**/cs/*.ogg",),
    ),
    Source("klettres", "klettres-data", _A, "speech", "original", ("usr/share/klettres/**/*.ogg",)),
    # ---- real video ----------------------------------------------------------------------------
    Source(
        "imageio-video",
        "python3-imageio",
        _A,
        "video",
        "original",
        ("usr/lib/python3/dist-packages/imageio/resources/images/*.mp4",),
        smoke=True,
    ),
    Source(
        "mecavideo",
        "python3-mecavideo",
        _A,
        "video",
        "original",
        ("usr/share/pymecavideo/data/video/*",),
        smoke=True,
        smoke_limit=4,
    ),
    Source(
        "kivy-video",
        "python-kivy-examples",
        _A,
        "video",
        "original",
        ("usr/share/kivy-examples/widgets/*.mpg",),
        smoke=True,
    ),
    Source(
        "opencv-video",
        "opencv-doc",
        _A,
        "video",
        "original",
        ("usr/share/doc/opencv-doc/examples/data/*.avi",),
    ),
    Source(
        "pd-video", "pd-extendedview", _A, "video", "original", ("usr/share/doc/pd-extendedview/media/*.mov",)
    ),
    Source("renpy-video", "renpy-demo", _A, "video", "original", ("usr/share/games/renpy/demo/game/*.webm",)),
    Source(
        "kphotoalbum-video", "kphotoalbum", _A, "video", "original", ("usr/share/kphotoalbum/demo/*.avi",)
    ),
    Source(
        "dlib-frames",
        "libdlib19.1",
        _A,
        "video",
        "original",
        ("usr/share/doc/libdlib19.1/examples/video_frames",),
        mode="frames",
        fps=25.0,
        smoke=True,
    ),
    Source(
        "visp-frames",
        "visp-images-data",
        _A,
        "video",
        "original",
        (
            "usr/share/visp-images-data/ViSP-images/mire-2",
            "usr/share/visp-images-data/ViSP-images/mbt/cube",
            "usr/share/visp-images-data/ViSP-images/cube",
            "usr/share/visp-images-data/ViSP-images/ellipse-1",
        ),
        mode="frames",
        fps=25.0,
    ),
)

#: Which collections each ``build`` target makes.
TARGETS: dict[str, tuple[str, ...]] = {
    "images": ("images",),
    "music": ("music",),
    "speech": ("speech",),
    "video": ("images", "music", "video"),
    "all": ("images", "music", "speech", "video"),
}


def sources_for(collections: tuple[str, ...], *, smoke: bool = False) -> list[Source]:
    """The sources of the given collections (only smoke ones if ``smoke``), in recipe order.

    Examples
    --------
    >>> [s.key for s in sources_for(("speech",), smoke=True)]
    ['codec2']
    """
    keys = [s.key for s in SOURCES]
    if len(set(keys)) != len(keys):
        raise DatasetsError("duplicate source keys in the recipe")
    return [s for s in SOURCES if s.collection in collections and (s.smoke or not smoke)]
