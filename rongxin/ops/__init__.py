"""Operator tooling for a consortium network (``rongxin chain init|up|down|status``).

* :mod:`rongxin.ops.layout` — names, roles and addresses of the nodes of a new network;
* :mod:`rongxin.ops.build` — :func:`~rongxin.ops.build.create_network`: keys,
  certificates, genesis, one ``node.toml`` per node, start/stop scripts, a systemd unit,
  a Prometheus configuration and alert rules;
* :mod:`rongxin.ops.templates` — those operator files as text;
* :mod:`rongxin.ops.procs` — start and stop the nodes of a network directory on this
  machine and ask each for its ``/status``.
"""
