"""The graph description as launch_ros actions, for launch/*.launch.py.

Imported only by launch files, on machines with a full ROS 2 install (`launch` and
`launch_ros` are not on PyPI). Each graph option becomes a launch argument whose default
the launch file chooses; the nodes are built once the arguments are known:

    ros2 launch robot_rl sim.launch.py policy:=push_dp record:=/data/push.zarr
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ros_nodes.graph import GraphOptions, build_graph


def graph_launch_description(**defaults: str) -> LaunchDescription:
    """Launch arguments for the graph options in `defaults` (strings) and a Node per graph node."""
    GraphOptions.from_strings(defaults)  # a misspelt option fails when the file loads

    def nodes(context):
        options = GraphOptions.from_strings({k: LaunchConfiguration(k).perform(context) for k in defaults})
        return [
            Node(
                package="robot_rl",
                executable=spec.executable,
                name=spec.name,
                parameters=[spec.parameters],
                remappings=list(spec.remappings),
                output="screen",
            )
            for spec in build_graph(options)
        ]

    arguments = [DeclareLaunchArgument(k, default_value=v) for k, v in defaults.items()]
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])
