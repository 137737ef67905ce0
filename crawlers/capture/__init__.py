"""Evidence capture: one page in a fresh browser profile, every request in a WARC, a
full-page screenshot, an MP4 screen recording, the media files, the DOM, the environment
record and a timestamped log (:func:`capture`). See ``docs/evidence.md``.
"""

from __future__ import annotations

from crawlers.capture.browse import Capture, CaptureOptions, capture

__all__ = ["Capture", "CaptureOptions", "capture"]
