"""Teleoperation logic without ROS: Twist/Joy to joint targets, leader-arm mirroring."""
