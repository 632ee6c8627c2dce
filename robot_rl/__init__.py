"""robot-rl: robot learning for real arms.

The core library. Nothing under robot_rl imports rclpy: ROS plumbing lives in ros_nodes/.
"""

__version__ = "0.1.0"
