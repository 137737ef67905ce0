"""The member platform: the web application a member organization runs beside its node.

Server-rendered pages (FastAPI + Jinja2, a little JavaScript written here) for the
people who do not live in a terminal: legal staff register works, operators watch the
nodes, anyone signed in checks a receipt, the admin manages users.

* :mod:`rongxin.platform.config` — ``platform.toml``;
* :mod:`rongxin.platform.roles` — the role → permission table;
* :mod:`rongxin.platform.accounts` — users (Argon2id), server-side sessions, throttling;
* :mod:`rongxin.platform.web` — sessions, CSRF, authorization, rendering, audit;
* :mod:`rongxin.platform.chainview` — the explorer's reads through ``NodeClient``;
* :mod:`rongxin.platform.workstore` — the forensics library, uploads, anchor receipts;
* :mod:`rongxin.platform.charts` — server-rendered SVG charts;
* :mod:`rongxin.platform.i18n` — Chinese by default, English switchable;
* ``routes_*`` — one module per area; :mod:`rongxin.platform.app` — :func:`create_app`;
* :mod:`rongxin.platform.serve` — ``rongxin serve --config platform.toml``.
"""
