"""A real arm behind its vendor's ros2_control driver (started on its own): controller, policy, recorder.

    ros2 launch ur_robot_driver ur_control.launch.py ur_type:=ur5e robot_ip:=... \
        initial_joint_controller:=forward_position_controller
    ros2 launch robot_rl robot.launch.py config:=ur5e policy:=push_dp server:=tcp://gpu-box:5555
    ros2 launch robot_rl robot.launch.py config:=ur5e policy:=push server:=tcp://gpu-box:5555 \
        learner:=tcp://gpu-box:5570 reward:=operator teleop:=twist     # online RL (robot-rl learn)

Nodes, parameters and remappings come from ros_nodes/graph.py, which `robot-rl bringup`
runs too; this file only picks the defaults of the launch arguments.
"""

from ros_nodes.launch_actions import graph_launch_description


def generate_launch_description():
    return graph_launch_description(
        config="ur5e",
        policy="",
        server="tcp://127.0.0.1:5555",
        record="",
        teleop="",
        learner="",
        reward="operator",
        reward_classifier="reward",
        reset="operator",
        episode_steps="300",
    )
