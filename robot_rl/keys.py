"""The one place that names observation and action keys.

Sim environments, real-robot observation assembly, the episode store, converters and
policies all use these names, so that a dataset recorded on hardware trains the same
policy as one rolled out in MuJoCo. Never spell a key as a string literal elsewhere.

Shapes are per time step; `J` is the number of arm joints in the hardware config.
"""

# Proprioception.
JOINT_POS = "joint_pos"  # (J,) float32, rad, arm joints in hardware-config order
JOINT_VEL = "joint_vel"  # (J,) float32, rad/s
GRIPPER_POS = "gripper_pos"  # (1,) float32, opening in [0, 1]: 0 closed, 1 open
EE_POS = "ee_pos"  # (3,) float32, tool centre point in the robot base frame, m
EE_QUAT = "ee_quat"  # (4,) float32, w x y z

# Task state (simulation, or a perception stack on hardware).
OBJECT_POSE = "object_pose"  # (7,) float32, object position (3) + quaternion w x y z (4)
GOAL_POS = "goal_pos"  # (3,) float32, target point or region centre

# Cameras: one key per camera name in the hardware config, uint8 (H, W, 3).
IMAGE_PREFIX = "image_"


def image_key(camera: str) -> str:
    """`image_front` for camera `front`."""
    return f"{IMAGE_PREFIX}{camera}"


def is_image_key(key: str) -> bool:
    return key.startswith(IMAGE_PREFIX)


# Action: absolute joint-position targets for the arm (J,) then the gripper command (1,)
# in [0, 1] (0 closed, 1 open), float32, shape (J + 1,).
ACTION = "action"

# Per-step bookkeeping stored beside observations.
REWARD = "reward"  # () float32
TERMINAL = "terminal"  # () bool: the episode ended in a true terminal state
INTERVENTION = "intervention"  # () bool: a human commanded this step, not the policy
TIMESTAMP = "timestamp"  # () float64, seconds on the recording machine's clock

STATE_KEYS = (JOINT_POS, JOINT_VEL, GRIPPER_POS, EE_POS, EE_QUAT, OBJECT_POSE, GOAL_POS)
STEP_KEYS = (ACTION, REWARD, TERMINAL, INTERVENTION, TIMESTAMP)
