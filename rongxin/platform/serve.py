"""``rongxin serve --config platform.toml``: run the member platform with uvicorn.

``rongxin serve --demo DIR`` first builds a demonstration deployment in ``DIR`` (node
processes on loopback, a member organization, one user per role, a few anchored works;
see :mod:`rongxin.platform.deploy`), prints the URL and a demo login, serves the platform
until interrupted, then stops the nodes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from rongxin.cli_common import fail


def demo_images(directory: Path) -> list[Path]:
    """A few photographs for the demo works (scikit-image's, else generated patterns)."""
    import cv2
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    images: dict[str, np.ndarray] = {}
    try:
        import skimage.data

        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            images[name] = np.asarray(getattr(skimage.data, name)())
    except ImportError:
        rng = np.random.default_rng(2026)
        for i in range(4):
            small = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
            images[f"pattern-{i}"] = cv2.resize(small, (480, 360), interpolation=cv2.INTER_CUBIC)
    out = []
    for name, rgb in images.items():
        path = directory / f"{name}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        out.append(path)
    return out


def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The platform's platform.toml.")] = Path(
        "platform.toml"
    ),
    demo: Annotated[
        Path | None,
        typer.Option(
            "--demo", help="Build a demo deployment (node processes, users, works) in DIR and serve it."
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port of the demo platform on 127.0.0.1.")] = 8480,
) -> None:
    """Run the member platform (web pages and explorer) on the configured address."""
    import uvicorn

    from rongxin.errors import RongxinError
    from rongxin.platform.app import close_app, create_app
    from rongxin.platform.config import load_config

    with contextlib.ExitStack() as running:
        deployment = None
        try:
            if demo is not None:
                from rongxin.platform.deploy import DEMO_PASSWORD, running_demo

                typer.echo(f"starting the demo network and platform in {demo} …")
                deployment = running.enter_context(
                    running_demo(demo, images=demo_images(demo / "media"), port=port)
                )
                config = deployment.config
            cfg = load_config(config)
            app = create_app(cfg)
        except RongxinError as exc:  # the demo's nodes (if any) stop as the block ends
            raise fail(str(exc)) from None
        typer.echo(
            f"Rongxin member platform on http://{cfg.host}:{cfg.port}/ "
            f"(audit log {cfg.data_dir / 'ops-audit.jsonl'})"
        )
        if deployment is not None:
            users = ", ".join(f"{name} ({role})" for name, role in deployment.users.items())
            typer.echo(f"demo login: user legal-staff, password {DEMO_PASSWORD}; other users: {users}")
            typer.echo(
                f"the auditor opens confidential transfers with {deployment.directory / 'auditor.key'} "
                "(same password)"
            )
            typer.echo("Ctrl-C stops the platform and the demo nodes.")
        try:
            uvicorn.run(
                app,
                host=cfg.host,
                port=cfg.port,
                log_level="warning",
                proxy_headers=cfg.behind_proxy,  # client address and scheme from a local reverse proxy
                forwarded_allow_ips="127.0.0.1" if cfg.behind_proxy else None,
            )
        finally:
            close_app(app)
