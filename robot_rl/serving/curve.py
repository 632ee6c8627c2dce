"""CURVE key files and the server's authenticator.

Files (written by `robot-rl keygen NAME --dir DIR`):

    DIR/NAME.key          public certificate (ZeroMQ ZPL format), mode 0644: hand it out
    DIR/NAME.key_secret   public + secret key, mode 0600: never leaves the machine

Allowed-key lists are plain text files, one Z85 public key (40 characters) or a path to a
`.key` certificate per line, optionally followed by whitespace and a comment; lines starting
with `# ` (hash, space) are comments (Z85 keys themselves may contain `#`). A server has one list for
robots (may run inference, ping, status) and one for learners (may also push weights).
The authenticator admits a connection only when the client proves it holds the secret
key of a listed public key; the ZeroMQ `User-Id` of every frame is then that public key,
which is how the server knows the sender's role.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

ZAP_DOMAIN = "robot_rl"


@dataclass(frozen=True)
class KeyPair:
    public: bytes  # Z85, 40 bytes
    secret: bytes | None


def generate(directory: str | os.PathLike, name: str, force: bool = False) -> tuple[Path, Path]:
    """Write NAME.key (0644) and NAME.key_secret (0600) in `directory`; refuse to overwrite unless `force`."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"key name {name!r} must be a plain file name")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    public_path = directory / f"{name}.key"
    secret_path = directory / f"{name}.key_secret"
    for path in (public_path, secret_path):
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists; pass --force to replace it (the old key stops working)")
    public, secret = zmq.curve_keypair()
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    banner = f"#   ZeroMQ CURVE certificate written by robot-rl keygen at {now}\n"
    _write(public_path, banner + f'curve\n    public-key = "{public.decode()}"\n', 0o644)
    _write(
        secret_path,
        banner + f'curve\n    public-key = "{public.decode()}"\n    secret-key = "{secret.decode()}"\n',
        0o600,
    )
    return public_path, secret_path


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)  # umask may have narrowed it; the secret file is never wider than 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_keypair(path: str | os.PathLike, need_secret: bool = True) -> KeyPair:
    """Read a certificate; a secret-key file must not be readable by group or others."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no key file {path}")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not a CURVE certificate ({exc})") from None
    if need_secret:
        if secret is None:
            raise ValueError(f"{path}: holds no secret key (use the .key_secret file)")
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path}: secret key file is readable by others; chmod 600 {path}")
    _check_z85(public, path)
    return KeyPair(public, secret)


def load_allowed_keys(path: str | os.PathLike) -> set[bytes]:
    """One Z85 public key per line (or a path to a .key certificate); the first token of a line counts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no allowed-keys file {path}")
    keys = set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text == "#" or text.startswith("# "):  # Z85 keys may contain '#': comments need '# '
            continue
        token = text.split()[0]
        if token.endswith(".key"):
            cert = Path(token) if Path(token).is_absolute() else path.parent / token
            keys.add(load_keypair(cert, need_secret=False).public)
            continue
        key = token.encode()
        _check_z85(key, f"{path}:{lineno}")
        keys.add(key)
    return keys


def _check_z85(key: bytes, where) -> None:
    try:
        ok = len(key) == 40 and len(zmq.utils.z85.decode(key)) == 32
    except Exception:
        ok = False
    if not ok:
        raise ValueError(f"{where}: {key[:48]!r} is not a 40-character Z85 CURVE public key")


class _Allowed:
    """Credentials provider for pyzmq's authenticator: a key is admitted when listed."""

    def __init__(self, keys: set[bytes]):
        self.keys = frozenset(keys)

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.keys


def start_authenticator(context: zmq.Context, allowed: set[bytes]) -> ThreadAuthenticator:
    """Run the ZAP handler in a thread of `context`; only `allowed` client keys complete the handshake."""
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=_Allowed(allowed))
    return auth


def make_server_socket_secure(sock: zmq.Socket, server: KeyPair) -> None:
    sock.zap_domain = ZAP_DOMAIN.encode()
    sock.curve_secretkey = server.secret
    sock.curve_publickey = server.public
    sock.curve_server = True


def make_client_socket_secure(sock: zmq.Socket, client: KeyPair, server_public: bytes) -> None:
    sock.curve_secretkey = client.secret
    sock.curve_publickey = client.public
    sock.curve_serverkey = server_public
