"""The graph description, and the launch files and bringup that both must follow it exactly."""

import argparse
import ast
import importlib.util
from pathlib import Path

import pytest
import tomllib
import yaml

from ros_nodes import bringup
from ros_nodes.graph import ACTION_CHUNK_TOPIC, GraphOptions, build_graph

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def _launch_defaults(path: Path) -> dict[str, str]:
    """The literal keyword arguments a launch file hands to graph_launch_description, checking
    that the file does nothing else: no Node(...) of its own, no other call."""
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert len(calls) == 1, f"{path.name}: expected a single call, to graph_launch_description"
    call = calls[0]
    assert isinstance(call.func, ast.Name) and call.func.id == "graph_launch_description", path.name
    assert not call.args, f"{path.name}: graph options are passed by name"
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [
        ("ros_nodes.launch_actions", ["graph_launch_description"])
    ], f"{path.name}: imports anything but the graph"
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def test_three_launch_files_ship():
    assert [p.name for p in LAUNCH_FILES] == ["robot.launch.py", "sim.launch.py", "teleop_record.launch.py"]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_only_sets_graph_options(path):
    defaults = _launch_defaults(path)
    assert all(isinstance(v, str) for v in defaults.values()), "launch argument defaults are strings"
    build_graph(GraphOptions.from_strings(defaults))  # every option exists and the graph builds


def test_launch_actions_node_comes_from_the_spec_only():
    """launch_actions.py makes exactly one kind of Node, every field taken from a NodeSpec."""
    tree = ast.parse((ROOT / "ros_nodes" / "launch_actions.py").read_text())
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"]
    assert len(nodes) == 1
    got = {kw.arg: ast.unparse(kw.value) for kw in nodes[0].keywords}
    assert got == {
        "package": "'robot_rl'",
        "executable": "spec.executable",
        "name": "spec.name",
        "parameters": "[spec.parameters]",
        "remappings": "list(spec.remappings)",
        "output": "'screen'",
    }
    comps = [n for n in ast.walk(tree) if isinstance(n, ast.ListComp)]
    loops = {ast.unparse(g.iter) for c in comps for g in c.generators}
    assert "build_graph(options)" in loops


def test_every_node_is_a_console_script_with_a_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    options = GraphOptions(policy="p", record="/tmp/s.zarr", teleop="twist")
    for spec in build_graph(options):
        assert scripts[spec.executable] == f"{spec.module}:main"
        assert importlib.util.find_spec(spec.module) is not None, f"{spec.module} missing"


def test_graph_follows_options_and_hardware():
    base = {s.name for s in build_graph(GraphOptions())}
    assert base == {"sim_robot", "controller"}
    full = build_graph(GraphOptions(policy="p", record="/tmp/s.zarr", teleop="leader"))
    assert [s.name for s in full] == ["sim_robot", "controller", "policy", "teleop", "recorder"]
    real = {s.name: s for s in build_graph(GraphOptions(config="ur5e", policy="p"))}
    assert "sim_robot" not in real, "a real arm's driver replaces the sim node"
    assert ("commands", "/forward_position_controller/commands") in real["controller"].remappings
    assert ("action_chunk", ACTION_CHUNK_TOPIC) in real["policy"].remappings
    fr3 = {s.name: s for s in build_graph(GraphOptions(config="fr3"))}
    assert ("commands", "/fr3_arm_controller/joint_trajectory") in fr3["controller"].remappings
    fast = {s.name: s for s in build_graph(GraphOptions(real_time_factor=0.0))}
    assert fast["sim_robot"].parameters["publish_clock"] is True
    assert fast["controller"].parameters["use_sim_time"] is True


def test_bad_options_named():
    with pytest.raises(ValueError, match="teleop must be"):
        GraphOptions(teleop="gamepad")
    with pytest.raises(ValueError, match="unknown graph option 'polcy'"):
        GraphOptions.from_strings({"polcy": "x"})
    with pytest.raises(ValueError, match="real_time_factor must be a number"):
        GraphOptions.from_strings({"real_time_factor": "fast"})


def test_bringup_runs_exactly_the_description(tmp_path):
    """Each bringup command carries the spec's node name, parameters and remappings, nothing else."""
    parser = argparse.ArgumentParser()
    bringup.add_arguments(parser)
    args = parser.parse_args(["--policy", "p", "--record", str(tmp_path / "s.zarr"), "--teleop", "twist"])
    specs = build_graph(bringup.options_from_args(args))
    for spec in specs:
        cmd = bringup.node_command(spec, bringup.write_params_file(spec, tmp_path))
        ros_args = cmd[cmd.index("--ros-args") + 1 :]
        pairs = list(zip(ros_args[::2], ros_args[1::2]))
        assert cmd[:4] == [cmd[0], "-m", "ros_nodes.launcher", spec.executable]
        assert pairs[0] == ("-r", f"__node:={spec.name}")
        params_file = Path(dict(pairs)["--params-file"])
        assert yaml.safe_load(params_file.read_text()) == {
            f"/{spec.name}": {"ros__parameters": spec.parameters}
        }
        remaps = [tuple(v.split(":=")) for k, v in pairs[1:] if k == "-r"]
        assert remaps == list(spec.remappings)
        assert len(pairs) == 2 + len(spec.remappings)


def test_bringup_cli_dry_run(capsys):
    from robot_rl.cli import main

    assert main(["bringup", "--dry-run", "--teleop", "twist"]) == 0
    out = capsys.readouterr().out
    assert "ros_nodes.launcher teleop_node" in out and "ros_nodes.launcher sim_robot_node" in out
    assert main(["bringup", "--config", "nope", "--dry-run"]) == 2
    assert "no hardware config 'nope'" in capsys.readouterr().err
