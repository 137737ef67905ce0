"""Assembled media: slideshow videos from corpus photos and music, and frames from real videos.

Real camera footage is scarce in packages, so video benchmarks also use slideshows made
here with ffmpeg: each photo gets a camera move (``zoompan``: zoom in or out while
panning), consecutive photos are joined by a transition (``xfade``), and a music
excerpt plays under them. Resolutions, frame rates, durations, photos, music and moves
come from a seeded generator, so the same seed gives the same recipes and, with
single-threaded bit-exact encoding, the same bytes. Every such file is labelled
``assembled`` in the manifest with its ``recipe`` and ``derived_from`` ids.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from chain.crypto.sm3 import sm3_file
from datasets import media
from datasets.errors import DatasetsError, ManifestError
from datasets.manifest import Entry, Role, parse_lines
from datasets.tools import FFMPEG_BITEXACT, ffmpeg, media_fields, probe

STATE_NAME = "assembled.jsonl"
RESOLUTIONS = ((640, 360), (854, 480), (1280, 720), (480, 480), (360, 640))
FRAME_RATES = (24, 25, 30)
TRANSITIONS = ("fade", "dissolve", "wipeleft", "slideright", "circleopen", "smoothup")


def plan_clip(
    index: int, seed: int, photos: list[str], tracks: list[str], *, short: bool = False
) -> dict[str, Any]:
    """The recipe of assembled clip ``index``: a pure function of its arguments.

    Parameters
    ----------
    index, seed : int
        Which clip, and the corpus seed.
    photos, tracks : list of str
        Candidate photo and music entry ids (sorted by the caller).
    short : bool
        Small, short clips (for the smoke corpus).

    Examples
    --------
    >>> a = plan_clip(3, 7, ["p1", "p2", "p3", "p4", "p5", "p6"], ["m1", "m2"])
    >>> a == plan_clip(3, 7, ["p1", "p2", "p3", "p4", "p5", "p6"], ["m1", "m2"])
    True
    >>> 20 <= a["duration"] <= 40
    True
    """
    rng = random.Random(f"rongxin-assembled/{seed}/{index}")
    if short:
        width, height, fps, n, per, trans = 320, 180, 15, 3, 3.0, 0.5
    else:
        width, height = rng.choice(RESOLUTIONS)
        fps = rng.choice(FRAME_RATES)
        n = rng.randint(4, 6)
        trans = round(rng.uniform(0.6, 1.2), 2)
        target = rng.uniform(20.5, 39.5)
        per = round((target + (n - 1) * trans) / n, 2)
    if len(photos) < n:
        raise DatasetsError(f"need at least {n} photos to assemble a clip, have {len(photos)}")
    shots = []
    for pid in rng.sample(photos, n):
        zoom_in = rng.random() < 0.5
        shots.append(
            {
                "photo": pid,
                "zoom_in": zoom_in,
                "zoom_max": round(rng.uniform(1.15, 1.5), 3),
                "pan_from": [round(rng.random(), 3), round(rng.random(), 3)],
                "pan_to": [round(rng.random(), 3), round(rng.random(), 3)],
            }
        )
    duration = round(n * per - (n - 1) * trans, 3)
    return {
        "type": "slideshow",
        "index": index,
        "seed": seed,
        "width": width,
        "height": height,
        "fps": fps,
        "seconds_per_photo": per,
        "transition": rng.choice(TRANSITIONS),
        "transition_seconds": trans,
        "shots": shots,
        "music": rng.choice(tracks) if tracks else None,
        "music_start_fraction": round(rng.uniform(0.0, 0.6), 3),
        "duration": duration,
        "codec": "libx264",
        "crf": 23,
        "preset": "veryfast",
    }


def render_slideshow(
    recipe: dict[str, Any], photo_paths: list[Path], music: Path | None, music_start: float, dest: Path
) -> None:
    """Render a :func:`plan_clip` recipe with ffmpeg into ``dest`` (MP4, H.264 + AAC)."""
    w, h, fps = recipe["width"], recipe["height"], recipe["fps"]
    per, trans = recipe["seconds_per_photo"], recipe["transition_seconds"]
    frames = round(per * fps)
    args: list[str | Path] = []
    graph: list[str] = []
    for i, (shot, path) in enumerate(zip(recipe["shots"], photo_paths, strict=True)):
        args += ["-i", path]
        zmax = shot["zoom_max"]
        z = f"1+{zmax - 1:.4f}*on/{frames}" if shot["zoom_in"] else f"{zmax:.4f}-{zmax - 1:.4f}*on/{frames}"
        (x0, y0), (x1, y1) = shot["pan_from"], shot["pan_to"]
        x = f"(iw-iw/zoom)*({x0}+({x1 - x0:.3f})*on/{frames})"
        y = f"(ih-ih/zoom)*({y0}+({y1 - y0:.3f})*on/{frames})"
        graph.append(
            f"[{i}:v]format=rgb24,scale={2 * w}:{2 * h}:force_original_aspect_ratio=increase,"
            f"crop={2 * w}:{2 * h},"
            f"setsar=1,zoompan=z='{z}':x='{x}':y='{y}':d={frames}:s={w}x{h}:fps={fps},"
            f"trim=end_frame={frames},setpts=PTS-STARTPTS,format=yuv420p[v{i}]"
        )
    last = "v0"
    for k in range(1, len(photo_paths)):
        offset = k * (per - trans)
        graph.append(
            f"[{last}][v{k}]xfade=transition={recipe['transition']}:duration={trans}:offset={offset:.3f}[x{k}]"
        )
        last = f"x{k}"
    total = recipe["duration"]
    maps = ["-map", f"[{last}]"]
    if music is not None:
        args += ["-ss", f"{music_start:.3f}", "-t", f"{total:.3f}", "-i", music]
        a = len(photo_paths)
        graph.append(
            f"[{a}:a]aresample=44100,aformat=channel_layouts=stereo,afade=t=in:d=0.5,"
            f"afade=t=out:st={max(total - 1.0, 0):.3f}:d=1,apad,atrim=end={total:.3f}[aout]"
        )
        maps += ["-map", "[aout]", "-c:a", "aac", "-b:a", "128k"]
    ffmpeg(
        [
            *args,
            "-filter_complex",
            ";".join(graph),
            *maps,
            "-t",
            f"{total:.3f}",
            "-c:v",
            "libx264",
            "-preset",
            recipe["preset"],
            "-crf",
            str(recipe["crf"]),
            "-pix_fmt",
            "yuv420p",
            *FFMPEG_BITEXACT,
            "-movflags",
            "+faststart",
            dest,
        ],
        what=f"assemble slideshow {recipe['index']}",
    )


def _read(path: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    if path.is_file():
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                data = json.loads(line)
                out[data["key"]] = parse_lines([json.dumps(data["entry"])], str(path))[0]
        except (json.JSONDecodeError, KeyError, ManifestError) as exc:
            raise ManifestError(f"state file {path} is damaged ({exc}); delete it to redo") from None
    return out


def _save(path: Path, done: dict[str, Entry]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        "".join(json.dumps({"key": k, "entry": asdict(e)}) + "\n" for k, e in done.items()), encoding="utf-8"
    )
    tmp.replace(path)


def _place(root: Path, tmp: Path, sub: str, prefix: str, suffix: str) -> tuple[str, str, str, int]:
    digest = sm3_file(tmp).hex()
    entry_id = f"{prefix}-{digest[:16]}"
    rel = f"{sub}/{entry_id}{suffix}"
    (root / sub).mkdir(parents=True, exist_ok=True)
    tmp.replace(root / rel)
    return entry_id, digest, rel, (root / rel).stat().st_size


def _valid(root: Path, e: Entry) -> bool:
    p = root / e.path
    return p.is_file() and p.stat().st_size == e.size


def build_assembled(
    root: Path,
    base: list[Entry],
    *,
    count: int,
    seed: int = 0,
    short: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Entry]:
    """Make (or reuse) ``count`` slideshow clips and frame distractors from ``base`` entries.

    One clip in six is a *distractor* clip, built only from distractor images and
    distractor audio; the rest use original photos and music. Three frames of every
    real video (one in ``short`` mode) become distractor images.
    """
    state_path = root / ".state" / STATE_NAME
    state_path.parent.mkdir(parents=True, exist_ok=True)
    done = {k: e for k, e in _read(state_path).items() if _valid(root, e)}
    by_id = {e.id: e for e in base}

    def ids(collection: str, role: str) -> list[str]:
        return sorted(e.id for e in base if e.collection == collection and e.role == role and not e.assembled)

    pools = {
        "original": (ids("images", "original"), ids("music", "original")),
        "distractor": (ids("images", "distractor"), ids("music", "distractor")),
    }
    n_distractor = count // 6
    result: list[Entry] = []
    for i in range(count):
        role: Role = "distractor" if i >= count - n_distractor else "original"
        photos, tracks = pools[role]
        recipe = plan_clip(i, seed, photos, tracks, short=short)
        key = "clip:" + json.dumps(recipe, sort_keys=True)
        if progress:
            progress("assembled", i, count)
        if key in done:
            result.append(done[key])
            continue
        shots = [by_id[s["photo"]] for s in recipe["shots"]]
        music = by_id[recipe["music"]] if recipe["music"] else None
        start = (music.duration or 0) * recipe["music_start_fraction"] if music else 0.0
        if music and (music.duration or 0) - start < recipe["duration"]:
            start = max(0.0, (music.duration or 0) - recipe["duration"])
        recipe["music_start"] = round(start, 3)
        with tempfile.TemporaryDirectory(prefix="rx-asm-", dir=root) as tmp:
            out = Path(tmp) / "clip.mp4"
            render_slideshow(
                recipe, [root / s.path for s in shots], root / music.path if music else None, start, out
            )
            info = probe(out)
            entry_id, digest, rel, size = _place(root, out, "assembled", "vid", ".mp4")
        derived = [s.id for s in shots] + ([music.id] if music else [])
        e = Entry(
            id=entry_id,
            kind="video",
            collection="video",
            role=role,
            path=rel,
            digest=digest,
            size=size,
            package="+".join(sorted({s.package for s in shots} | ({music.package} if music else set()))),
            version="assembled",
            origin="assembled",
            license="derived from the inputs' licenses (see derived_from)",
            original_path=f"slideshow #{i}",
            **media_fields(info),
            assembled=True,
            recipe=recipe,
            derived_from=derived,
        )
        done[key] = e
        _save(state_path, done)
        result.append(e)
    result.extend(_frame_distractors(root, base, done, state_path, short))
    live = {e.id for e in result}
    _save(state_path, {k: e for k, e in done.items() if e.id in live})  # forget clips of old recipes
    if progress:
        progress("assembled", count, count)
    return result


def _frame_distractors(
    root: Path, base: list[Entry], done: dict[str, Entry], state_path: Path, short: bool
) -> list[Entry]:
    result = []
    fractions = (0.5,) if short else (0.25, 0.5, 0.75)
    for v in base:
        if v.collection != "video" or v.assembled or not v.duration:
            continue
        for frac in fractions:
            key = f"frame:{v.id}:{frac}"
            if key not in done:
                img = media.video_frame(root / v.path, v.duration * frac)
                with tempfile.TemporaryDirectory(prefix="rx-frm-", dir=root) as tmp:
                    out = Path(tmp) / "frame.png"
                    img.save(out, format="PNG", optimize=False)
                    entry_id, digest, rel, size = _place(root, out, "images", "img", ".png")
                done[key] = Entry(
                    id=entry_id,
                    kind="image",
                    collection="images",
                    role="distractor",
                    path=rel,
                    digest=digest,
                    size=size,
                    package=v.package,
                    version=v.version,
                    origin=v.origin,
                    license=v.license,
                    original_path=f"frame at {frac:.0%} of {v.original_path}",
                    width=img.width,
                    height=img.height,
                    assembled=True,
                    recipe={"type": "video frame", "at_seconds": round(v.duration * frac, 3)},
                    derived_from=[v.id],
                )
                _save(state_path, done)
            if done[key].license != v.license:  # the package's license line was re-read
                done[key] = replace(done[key], license=v.license)
                _save(state_path, done)
            result.append(done[key])
    return result
