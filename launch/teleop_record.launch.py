"""Teleoperation and recording: Twist and Joy (or a leader arm) drive the arm, the recorder writes episodes.

    ros2 launch robot_rl teleop_record.launch.py record:=/data/demos.zarr
    ros2 service call /robot_rl/recorder/start std_srvs/srv/Trigger

Nodes, parameters and remappings come from ros_nodes/graph.py, which `robot-rl bringup`
runs too; this file only picks the defaults of the launch arguments.
"""

from ros_nodes.launch_actions import graph_launch_description


def generate_launch_description():
    return graph_launch_description(config="sim_ur5e", task="push", teleop="twist", record="demos.zarr")
