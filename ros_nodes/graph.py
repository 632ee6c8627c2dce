"""The ROS 2 node graph, described once.

`build_graph(options)` says which nodes run, with which parameters and remappings, for a
hardware config and a few options. Two things turn that description into processes:

    launch/*.launch.py      launch_ros Node actions, on machines with a full ROS 2 install
    robot-rl bringup        one subprocess per node, here (ros_nodes/bringup.py)

Neither adds a node, a parameter or a remapping of its own (tests/ros_nodes checks both).

Nodes use short relative topic names (`joint_states`, `commands`, `action_chunk`...);
the remappings below wire them to the names in DESIGN.md and in the hardware config, so a
real arm's ros2_control driver drops in where sim_robot_node stood:

    sim_robot_node ──joint_states──► controller_node, policy_node, teleop_node, recorder_node
      (or the vendor driver)  ◄──commands── controller_node ◄──action_chunk── policy_node
                                           ◄──teleop/chunk── teleop_node
    camera/<name>/image_raw ──► policy_node, recorder_node
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from robot_rl.config.hardware import HardwareConfig, load_hardware_config

ACTION_CHUNK_TOPIC = "/robot_rl/action_chunk"
TELEOP_TWIST_TOPIC = "/robot_rl/teleop/twist"
TELEOP_CHUNK_TOPIC = "/robot_rl/teleop/chunk"  # teleop -> controller: same filter as the policy's chunks
JOY_TOPIC = "/joy"
LEADER_JOINT_STATES_TOPIC = "/leader/joint_states"
ESTOP_SERVICE = "/robot_rl/estop"
OBJECT_POSE_TOPIC = "/robot_rl/object_pose"  # task state: sim node or a perception stack
GOAL_POS_TOPIC = "/robot_rl/goal_pos"
RECORDER_NAMESPACE = "/robot_rl/recorder"
POLICY_NAMESPACE = "/robot_rl/policy"
TASK_SUCCESS_TOPIC = "/robot_rl/task_success"  # a real cell's success detector (the sim node: its own)

ParamValue = bool | int | float | str | list


@dataclass(frozen=True)
class NodeSpec:
    """One ROS node: what launch_ros' Node(...) and bringup both need, nothing more."""

    name: str  # ROS node name
    executable: str  # console script in pyproject [project.scripts]; module ros_nodes.<executable>
    parameters: dict[str, ParamValue] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    @property
    def module(self) -> str:
        return f"ros_nodes.{self.executable}"


@dataclass(frozen=True)
class GraphOptions:
    """What to bring up. Every field is also a launch argument and a bringup flag."""

    config: str = "sim_ur5e"  # hardware config name or path
    task: str = "push"  # sim task (sim_robot_node only)
    policy: str = ""  # policy name on the inference server; empty: no policy_node
    server: str = "tcp://127.0.0.1:5555"  # inference server endpoint for policy_node
    action_horizon: int = 0  # policy_node: steps run from each chunk; 0: the policy's own Ta
    chunk_timeout_s: float = 0.0  # controller watchdog: no chunk this long -> hold; 0: the config's
    record: str = ""  # episode store path; empty: no recorder_node
    teleop: str = ""  # "", "twist" or "leader": teleop_node and its input
    real_time_factor: float = 1.0  # sim: 1.0 real time; 0 as fast as possible (publishes /clock)
    randomization: str = ""  # sim: a YAML file of sim.config.RandomizationConfig (drawn per reset)
    sensing_latency_s: float = 0.0  # sim: states and images published this late (stamps unchanged)
    learner: str = ""  # policy_node actor mode: the endpoint of `robot-rl learn`; empty: deploy
    reward: str = "task"  # actor mode: "task" (a success topic), "operator" (policy/label service)
    # or "classifier" (the reward classifier served as `reward_classifier` beside the policy)
    reward_classifier: str = "reward"  # actor mode, reward "classifier": its name on the server
    reset: str = ""  # actor mode: "sim" (sim node reset) or "operator"; empty: sim in sim, else operator
    episode_steps: int = 120  # actor mode: policy steps before an episode is cut

    def __post_init__(self):
        if self.teleop not in ("", "twist", "leader"):
            raise ValueError(f"teleop must be '', 'twist' or 'leader', got {self.teleop!r}")
        if self.action_horizon < 0:
            raise ValueError(f"action_horizon must be >= 0, got {self.action_horizon}")
        if self.chunk_timeout_s < 0:
            raise ValueError(f"chunk_timeout_s must be >= 0, got {self.chunk_timeout_s}")
        if self.real_time_factor < 0:
            raise ValueError(f"real_time_factor must be >= 0, got {self.real_time_factor}")
        if self.sensing_latency_s < 0:
            raise ValueError(f"sensing_latency_s must be >= 0, got {self.sensing_latency_s}")
        if self.reward not in ("task", "operator", "classifier"):
            raise ValueError(f"reward must be 'task', 'operator' or 'classifier', got {self.reward!r}")
        if self.reward == "classifier" and not self.reward_classifier:
            raise ValueError("reward 'classifier' needs reward_classifier: its name on the inference server")
        if self.reset not in ("", "sim", "operator"):
            raise ValueError(f"reset must be '', 'sim' or 'operator', got {self.reset!r}")
        if self.episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {self.episode_steps}")
        if self.learner and not self.policy:
            raise ValueError("learner (actor mode) needs policy: the explorer's name on the server")

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> GraphOptions:
        """From launch arguments (all strings); unknown names are refused by name."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown graph option {unknown[0]!r} (known: {', '.join(known)})")
        kwargs: dict[str, Any] = {}
        for name, text in values.items():
            kind = {"float": float, "int": int}.get(known[name].type)  # annotations are strings
            if kind in (float, int):
                try:
                    kwargs[name] = kind(text)
                except ValueError as exc:
                    what = "a number" if kind is float else "a whole number"
                    raise ValueError(f"graph option {name} must be {what}, got {text!r}") from exc
            else:
                kwargs[name] = text
        return cls(**kwargs)

    @classmethod
    def defaults_as_strings(cls) -> dict[str, str]:
        return {f.name: str(f.default) for f in fields(cls)}


def build_graph(options: GraphOptions, hw: HardwareConfig | None = None) -> tuple[NodeSpec, ...]:
    """The nodes for `options`, in start order (robot first, so its topics exist early)."""
    hw = hw or load_hardware_config(options.config)
    common: dict[str, ParamValue] = {"hardware_config": hw.source or options.config}
    state = ("joint_states", hw.controller.joint_states_topic)
    sim_time = hw.controller.driver == "mujoco" and options.real_time_factor == 0
    if sim_time:
        common["use_sim_time"] = True
    nodes: list[NodeSpec] = []
    if hw.controller.driver == "mujoco":
        nodes.append(
            NodeSpec(
                name="sim_robot",
                executable="sim_robot_node",
                parameters={
                    **{k: v for k, v in common.items() if k != "use_sim_time"},
                    "task": options.task,
                    "real_time_factor": options.real_time_factor,
                    "publish_clock": sim_time,
                    "step_rate_hz": 100.0,
                    "randomization": options.randomization,
                    "joint_state_latency_s": options.sensing_latency_s,
                    "autostart": True,
                },
                remappings=(
                    state,
                    ("commands", hw.controller.command_topic),
                    ("object_pose", OBJECT_POSE_TOPIC),
                    ("goal_pos", GOAL_POS_TOPIC),
                ),
            )
        )
    nodes.append(
        NodeSpec(
            name="controller",
            executable="controller_node",
            parameters={
                **common,
                # The sim needs no microsecond jitter: spin less, leave the CPU to the physics.
                **({"max_spin_margin_s": 0.0003} if hw.controller.driver == "mujoco" else {}),
                "chunk_timeout_s": options.chunk_timeout_s,
                "autostart": True,
            },
            remappings=(
                state,
                ("commands", hw.controller.command_topic),
                ("action_chunk", ACTION_CHUNK_TOPIC),
                ("teleop_chunk", TELEOP_CHUNK_TOPIC),
                ("estop", ESTOP_SERVICE),
            ),
        )
    )
    if options.policy:
        actor: dict[str, ParamValue] = {}
        actor_remaps: tuple[tuple[str, str], ...] = ()
        if options.learner:
            in_sim = hw.controller.driver == "mujoco"
            reset = options.reset or ("sim" if in_sim else "operator")
            if reset == "sim" and not in_sim:
                raise ValueError(f"reset 'sim' needs the MuJoCo sim; {hw.name} drives hardware")
            actor = {
                "learner": options.learner,
                "reward": options.reward,
                "reward_classifier": options.reward_classifier,
                "reset": reset,
                "episode_steps": options.episode_steps,
            }
            actor_remaps = (
                ("task_success", "/sim_robot/success" if in_sim else TASK_SUCCESS_TOPIC),
                ("teleop_chunk", TELEOP_CHUNK_TOPIC),
                ("controller_change_state", "/controller/change_state"),
                ("sim_reset", "/sim_robot/reset"),
                ("~/label", f"{POLICY_NAMESPACE}/label"),
                ("~/next_episode", f"{POLICY_NAMESPACE}/next_episode"),
            )
        nodes.append(
            NodeSpec(
                name="policy",
                executable="policy_node",
                parameters={
                    **common,
                    "server": options.server,
                    "policy": options.policy,
                    "action_horizon": options.action_horizon,
                    "joint_state_max_age_s": 0.1,
                    "image_max_age_s": 0.2,
                    "enabled": True,
                    **actor,
                },
                remappings=(
                    state,
                    ("action_chunk", ACTION_CHUNK_TOPIC),
                    ("object_pose", OBJECT_POSE_TOPIC),
                    ("goal_pos", GOAL_POS_TOPIC),
                    ("~/enable", f"{POLICY_NAMESPACE}/enable"),
                    *actor_remaps,
                ),
            )
        )
    if options.teleop:
        nodes.append(
            NodeSpec(
                name="teleop",
                executable="teleop_node",
                # Beside a policy a person intervenes: chunks only while they are at the device.
                parameters={
                    **common,
                    "mode": options.teleop,
                    "rate_hz": 20.0,
                    "only_when_active": bool(options.policy) and options.teleop == "twist",
                },
                remappings=(
                    state,
                    ("twist", TELEOP_TWIST_TOPIC),
                    ("joy", JOY_TOPIC),
                    ("leader_joint_states", LEADER_JOINT_STATES_TOPIC),
                    ("chunk", TELEOP_CHUNK_TOPIC),
                ),
            )
        )
    if options.record:
        nodes.append(
            NodeSpec(
                name="recorder",
                executable="recorder_node",
                parameters={**common, "store": options.record, "rate_hz": 10.0},
                remappings=(
                    state,
                    ("commands", hw.controller.command_topic),
                    ("~/start", f"{RECORDER_NAMESPACE}/start"),
                    ("~/stop", f"{RECORDER_NAMESPACE}/stop"),
                    ("~/discard", f"{RECORDER_NAMESPACE}/discard"),
                    ("~/success", f"{RECORDER_NAMESPACE}/success"),
                ),
            )
        )
    return tuple(nodes)
