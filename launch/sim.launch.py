"""MuJoCo UR5e: sim node and controller; a policy with policy:=NAME, a recorder with record:=STORE.

    ros2 launch robot_rl sim.launch.py policy:=push_dp server:=tcp://gpu-box:5555

Nodes, parameters and remappings come from ros_nodes/graph.py, which `robot-rl bringup`
runs too; this file only picks the defaults of the launch arguments.
"""

from ros_nodes.launch_actions import graph_launch_description


def generate_launch_description():
    return graph_launch_description(
        config="sim_ur5e",
        task="push",
        policy="",
        server="tcp://127.0.0.1:5555",
        record="",
        real_time_factor="1.0",
        learner="",
        reward="task",
        reward_classifier="reward",
        reset="sim",
        episode_steps="120",
        randomization="",
        sensing_latency_s="0.0",
    )
