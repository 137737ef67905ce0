"""The e2e manifest format: defaults, strict checking, the schedule."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from rongxin.e2e.manifest import ManifestError, Step, load_manifest, parse_manifest


def parse(doc: dict[str, Any]) -> Any:
    return parse_manifest(doc, "t", "t.toml")


def test_defaults_and_node_names() -> None:
    m = parse({"chain": {"nodes": 4, "observers": 1}})
    assert m.name == "t" and m.ip == "v4" and m.chain.empty_blocks
    assert m.node_names() == ["node-0", "node-1", "node-2", "node-3", "observer-0"]
    assert m.consensus_names() == ["node-0", "node-1", "node-2", "node-3"]
    assert m.node("observer-0").behaviour == "honest" and m.node("observer-0").sync == "blocks"
    assert m.schedule() == []
    j = parse(
        {
            "chain": {"joiners": 1, "snapshot_interval": 8},
            "nodes": {"joiner-0": {"start_at_s": 3, "sync": "state", "promote": True}},
        }
    )
    assert j.node_names()[-1] == "joiner-0" and j.joiner_names() == ["joiner-0"]
    assert "joiner-0" not in j.consensus_names() and j.chain.snapshot_interval == 8
    assert j.node("joiner-0").promote and j.node("joiner-0").sync == "state"


def test_every_kind_is_scheduled_in_time_order() -> None:
    m = parse(
        {
            "duration_s": 30,
            "chain": {"nodes": 4},
            "nodes": {"node-3": {"start_at_s": 2, "behaviour": "equivocate", "sync": "state"}},
            "perturb": [
                {"kind": "restart", "at_s": 20, "gap_s": 1},
                {"kind": "pause", "node": "leader", "at_s": 5, "duration_s": 3},
                {"kind": "partition", "groups": [["node-0", "node-1"], ["node-2", "node-3"]], "at_s": 10},
                {"kind": "clock_skew", "node": "node-2", "offset_ms": -2000, "at_s": 0},
                {"kind": "kill", "node": "random", "at_s": [15, 12]},
            ],
        }
    )
    steps = m.schedule()
    assert [(s.at_s, s.kind) for s in steps] == [
        (0.0, "clock_skew"),
        (5.0, "pause"),
        (10.0, "partition"),
        (12.0, "kill"),
        (15.0, "kill"),
        (20.0, "restart"),
    ]
    assert steps[0].offset_ms == -2000 and steps[2].groups == (("node-0", "node-1"), ("node-2", "node-3"))
    assert steps[-1].nodes == ("node-0", "node-1", "node-2", "node-3") and steps[-1].duration_s == 1
    assert m.node("node-3").behaviour == "equivocate" and m.node("node-3").start_at_s == 2
    assert "partition node-0,node-1 | node-2,node-3" in steps[2].describe()


def test_random_moments_are_seeded_spread_and_leave_room() -> None:
    doc = {"seed": 3, "duration_s": 60, "perturb": [{"kind": "kill", "node": "node-1", "times": 5,
                                                    "window_s": [10, 60], "down_s": 4}]}  # fmt: skip
    first, again = parse(doc).schedule(), parse(doc).schedule()
    assert first == again
    moments = [s.at_s for s in first]
    assert len(moments) == 5 and moments == sorted(moments)
    assert all(10 <= t <= 60 for t in moments)
    assert all(b - a >= 4 + 1 - 1e-9 for a, b in itertools.pairwise(moments))
    other = parse({**doc, "seed": 4}).schedule()
    assert [s.at_s for s in other] != moments


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"chain": {"nodez": 4}}, "[chain] nodez: unknown key"),
        ({"chain": {"nodes": 0}}, "[chain] nodes: must be an integer in 1..9"),
        ({"chain": {"nodes": 8, "observers": 2}}, "at most 9 nodes"),
        ({"ip": "v5"}, 'ip: must be "v4" or "v6"'),
        ({"load": {"rate": "fast"}}, "[load] rate: must be float"),
        ({"nodes": {"node-9": {}}}, "no node 'node-9'"),
        ({"nodes": {"node-1": {"behaviour": "a b"}}}, "behaviour: must be a short name"),
        ({"perturb": [{"kind": "explode", "at_s": 1}]}, "kind: must be one of"),
        ({"perturb": [{"kind": "kill", "node": "node-7", "at_s": 1}]}, "node: must name one of"),
        ({"perturb": [{"kind": "kill", "node": "node-1"}]}, "at_s: is required"),
        (
            {"perturb": [{"kind": "kill", "node": "node-1", "at_s": 1, "times": 2, "window_s": [1, 5]}]},
            "either at_s or times",
        ),
        ({"perturb": [{"kind": "kill", "node": "node-1", "at_s": 99}]}, "after the end of the run"),
        (
            {"perturb": [{"kind": "kill", "node": "node-1", "at_s": 1, "duration_s": 3}]},
            "duration_s: unknown key",
        ),
        (
            {"perturb": [{"kind": "pause", "node": "node-1", "nodes": "all", "at_s": 1}]},
            "nodes: is for restart",
        ),
        (
            {"perturb": [{"kind": "partition", "groups": [["node-0"], ["node-1"]], "at_s": 1}]},
            "every node must be in a group; missing node-2, node-3",
        ),
        (
            {
                "perturb": [
                    {
                        "kind": "partition",
                        "groups": [["node-0", "node-1"], ["node-1", "node-2", "node-3"]],
                        "at_s": 1,
                    }
                ]
            },
            "a node is in two groups",
        ),
        ({"perturb": [{"kind": "clock_skew", "node": "node-1", "at_s": 0}]}, "offset_ms ≠ 0"),
        ({"perturb": [{"kind": "clock_skew", "node": "leader", "offset_ms": 5, "at_s": 0}]}, "named node"),
        ({"perturb": [{"kind": "restart", "nodes": ["node-1", "node-1"], "at_s": 1}]}, "names a node twice"),
        ({"perturb": {"kind": "kill"}}, "must be an array of tables"),
        ({"chain": {"nodes": 4, "observers": 2, "joiners": 4}}, "at most 9 nodes"),
        ({"chain": {"joiners": 1}}, "joiner 'joiner-0' needs a [nodes.joiner-0] table"),
        ({"chain": {"joiners": 1}, "nodes": {"joiner-0": {"sync": "state"}}}, "must start after the chain"),
        ({"nodes": {"node-1": {"promote": True}}}, "only joiners"),
        ({"chain": {"snapshot_interval": -1}}, "[chain] snapshot_interval: must be an integer in 0.."),
    ],
)
def test_mistakes_are_refused_naming_file_section_and_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=r"^t\.toml: ") as info:
        parse(doc)
    assert message in str(info.value)


def test_load_manifest_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "pause.toml"
    good.write_text(
        'duration_s = 12\n[[perturb]]\nkind = "pause"\nnode = "node-2"\nat_s = 3\nduration_s = 4\n'
    )
    m = load_manifest(good)
    assert m.name == "pause" and m.path == good
    assert m.schedule() == [Step(3.0, "pause", node="node-2", duration_s=4.0)]
    bad = tmp_path / "bad.toml"
    bad.write_text("duration_s = [")
    with pytest.raises(ManifestError, match=r"bad\.toml: not TOML"):
        load_manifest(bad)
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.toml")
