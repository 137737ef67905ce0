"""Screen recording of a capture: the DevTools screencast piped into the system ``ffmpeg``.

Chromium sends a JPEG frame whenever the page's pixels change. A writer thread turns that
variable stream into a constant frame rate (the last frame is repeated until the next one
arrives, so a still page records as a still picture for as long as it was still) and pipes
it into ``ffmpeg``, which encodes H.264 in an MP4 that any player opens.
"""

from __future__ import annotations

import base64
import queue
import shutil
import subprocess
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from crawlers.errors import CaptureError


def ffmpeg_command(out: Path, fps: int) -> list[str]:
    """The ffmpeg command line reading JPEG frames on stdin at ``fps`` and writing ``out``."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise CaptureError("no ffmpeg on PATH: install the Debian package `ffmpeg`")
    return [
        exe, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "image2pipe", "-c:v", "mjpeg", "-framerate", str(fps), "-i", "-",
        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out),
    ]  # fmt: skip


class ScreenRecorder:
    """Records a page from :meth:`start` to :meth:`stop` into an MP4.

    Parameters
    ----------
    page
        A Playwright page (its context gives the DevTools session).
    out : Path
        The MP4 to write.
    fps : int
        Frames per second of the recording.
    size : (int, int)
        Largest frame width and height the browser sends.
    """

    def __init__(self, page: Any, out: Path, *, fps: int = 10, size: tuple[int, int] = (1280, 720)) -> None:
        self._page, self.out, self.fps, self._size = page, out, fps, size
        self._frames: queue.Queue[tuple[float, bytes] | None] = queue.Queue(maxsize=256)
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._cdp: Any = None
        self.frames_received = 0
        self.frames_written = 0
        self.started = 0.0
        self.stopped = 0.0
        self._error: str | None = None

    def start(self) -> None:
        """Start the screencast and the encoder."""
        self._proc = subprocess.Popen(
            ffmpeg_command(self.out, self.fps), stdin=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.started = time.time()
        self._thread = threading.Thread(target=self._pump, name="screen-recorder", daemon=True)
        self._thread.start()
        self._cdp = self._page.context.new_cdp_session(self._page)
        self._cdp.on("Page.screencastFrame", self._on_frame)
        w, h = self._size
        self._cdp.send(
            "Page.startScreencast", {"format": "jpeg", "quality": 70, "maxWidth": w, "maxHeight": h}
        )

    def _on_frame(self, params: dict[str, Any]) -> None:
        self.frames_received += 1
        with suppress(Exception):  # the page may be closing; the frame is still good
            self._cdp.send("Page.screencastFrameAck", {"sessionId": params["sessionId"]})
        with suppress(queue.Full):  # the encoder lags: drop this frame, the next one repeats the picture
            self._frames.put_nowait((time.time(), base64.b64decode(params["data"])))

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        last: bytes | None = None
        try:
            while True:
                item = self._frames.get()
                t = self.stopped if item is None else item[0]
                due = int((t - self.started) * self.fps)
                if last is not None:
                    while self.frames_written < due:
                        stdin.write(last)
                        self.frames_written += 1
                if item is None:
                    if last is not None:
                        stdin.write(last)
                        self.frames_written += 1
                    return
                last = item[1]
        except (BrokenPipeError, OSError) as exc:
            self._error = f"ffmpeg stopped taking frames: {exc}"

    def stop(self, timeout_s: float = 120.0) -> Path:
        """Stop the screencast, finish encoding; returns the MP4 path.

        Raises
        ------
        CaptureError
            No frame arrived, or ffmpeg failed.
        """
        if self._cdp is not None:
            try:
                self._cdp.send("Page.stopScreencast")
                self._cdp.detach()
            except Exception:  # the page is gone: the frames so far stand
                pass
        self.stopped = time.time()
        self._frames.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
        assert self._proc is not None and self._proc.stdin is not None
        with suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise CaptureError("ffmpeg did not finish the screen recording in time") from None
        err = self._proc.stderr.read() if self._proc.stderr is not None else b""
        if self.frames_written == 0:
            raise CaptureError("the screen recording received no frame")
        if self._error or self._proc.returncode != 0:
            detail = (err or b"").decode("utf-8", "replace").strip()[-400:]
            raise CaptureError(f"ffmpeg failed on the screen recording: {self._error or detail}")
        return self.out
