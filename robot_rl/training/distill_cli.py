"""`robot-rl distill --teacher CKPT --data demos.zarr --out runs/push_student`: one-step student.

A trained diffusion policy distilled on the observations of the same demonstrations, through
the same trainer: progress bar, validation loss, TensorBoard, checkpoints and resume.
`--method consistency` (default): consistency distillation
(robot_rl/algorithms/consistency_distillation.py); `--method direct`: the student regresses the
teacher's K-step DDIM sample from the same noise (robot_rl/algorithms/direct_distillation.py).
The student in OUT/policy has the teacher's interface; `--student-steps` sets its default
number of sampling steps (1).
"""

from __future__ import annotations

import argparse

from robot_rl.cli_types import decay, non_negative_int, positive_float, positive_int
from robot_rl.training.cli import add_data_arguments, add_trainer_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--teacher", required=True, help="diffusion policy checkpoint directory (a run's policy/)"
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--method",
        choices=("consistency", "direct"),
        default="consistency",
        help="consistency distillation, or direct regression of the teacher's DDIM samples",
    )
    parser.add_argument(
        "--grid-steps",
        type=positive_int,
        default=20,
        help="consistency: teacher DDIM steps the student learns to jump",
    )
    parser.add_argument(
        "--teacher-steps",
        type=non_negative_int,
        default=0,
        help="direct: DDIM steps of the teacher's sampler (0: the teacher's own setting)",
    )
    parser.add_argument(
        "--student-steps", type=positive_int, default=1, help="sampling steps of the saved student"
    )
    parser.add_argument(
        "--target-decay",
        type=decay,
        default=0.95,
        help="EMA decay of the consistency target network (0: the student itself, stop-gradient)",
    )
    parser.add_argument("--lr", type=positive_float, default=1e-4)
    parser.add_argument("--warmup", type=non_negative_int, default=100)
    add_trainer_arguments(parser)
    parser.set_defaults(steps=5000)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from robot_rl.algorithms.consistency_distillation import (
        ConsistencyDistillation,
        ConsistencyDistillationConfig,
    )
    from robot_rl.algorithms.direct_distillation import DirectDistillation, DirectDistillationConfig
    from robot_rl.policies import load_policy
    from robot_rl.training.cli import _device, _plain, _train

    teacher = load_policy(args.teacher, device=str(_device(args.device)))
    common = dict(
        grid_steps=args.grid_steps,
        student_steps=args.student_steps,
        target_decay=args.target_decay,
        lr=args.lr,
        warmup_steps=args.warmup,
        total_steps=args.steps,
    )
    if args.method == "direct":
        steps = args.teacher_steps or teacher.config.sampler.num_steps
        cfg = DirectDistillationConfig(**common, teacher_steps=steps)
        algo = DirectDistillation(teacher, cfg)
    else:
        cfg = ConsistencyDistillationConfig(**common)
        algo = ConsistencyDistillation(teacher, cfg)
    run_config = {
        "learner": f"{args.method}_distillation",
        "teacher": str(args.teacher),
        "data": str(args.data),
        "distill": _plain(cfg),
    }
    return _train(args, algo, list(teacher.config.obs_spec), algo.model.config, run_config)
