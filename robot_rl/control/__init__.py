"""Chunk execution, safety filter, watchdog and the fixed-rate loop (pure logic, no ROS).

executor.py     ChunkExecutor: timestamped chunks -> blended, interpolated targets
spline.py       natural cubic spline of one chunk (the control-rate interpolant)
safety.py       SafetyFilter: limits, workspace box, reasons; what is actually sent
jerk_limits.py  the jerk-limited braking math under the filter
watchdog.py     chunk timeout, stale joint states, latched e-stop
loop.py         ControlLoop: the fixed-rate thread tying them together
config.py       ControlConfig (blending and scheduling settings)
kinematics.py   ArmKinematics: forward kinematics of the arm model (sim engineer)
"""
