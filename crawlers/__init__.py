"""Crawlers: empty today.

No crawler exists yet: this package holds no module and exports nothing. The design
(``DESIGN.md`` §2) places here the crawl scope and frontier, fetching with robots rules,
extraction, the scan pipeline that sends found media to :mod:`forensics`, and court-grade
capture (WARC, screenshots, evidence packages). Until then, media reach the work library
as files given to ``rongxin works identify``.
"""

__all__: list[str] = []
