"""`robot-rl keygen NAME [--dir DIR]`: make a CURVE key pair for a server, robot or learner."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="file stem: writes NAME.key (public) and NAME.key_secret (mode 0600)")
    parser.add_argument(
        "--dir", default="keys", help="directory for the key files (created 0700; default keys/)"
    )
    parser.add_argument("--force", action="store_true", help="replace existing files with a new key pair")


def run(args: argparse.Namespace) -> int:
    from robot_rl.serving import curve

    try:
        public_path, secret_path = curve.generate(args.dir, args.name, force=args.force)
    except FileExistsError as exc:
        raise ValueError(str(exc)) from None  # reported as a usage error; the old files stay
    public = curve.load_keypair(public_path, need_secret=False).public.decode()
    print(f"public key  {public_path}")
    print(f"secret key  {secret_path}  (mode 0600; keep it on this machine)")
    print(f"allowed-keys line: {public}  # {args.name}")
    return 0
