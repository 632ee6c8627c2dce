"""Who may serve without keys: loopback when asked for, never beyond it."""

import os
import stat

import pytest
from serving_helpers import tiny_policy

from robot_rl.cli import main
from robot_rl.config.loader import ConfigError, from_dict
from robot_rl.serving import curve
from robot_rl.serving.client import ZmqTransport
from robot_rl.serving.config import SecurityConfig, ServerConfig, is_loopback
from robot_rl.serving.server import InferenceServer


@pytest.mark.parametrize(
    "endpoint, loopback",
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.0.0.7:*", True),
        ("tcp://localhost:1", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///tmp/robot.sock", True),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://*:5555", False),
        ("tcp://192.168.1.20:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://[::]:5555", False),
    ],
)
def test_loopback_classification(endpoint, loopback):
    assert is_loopback(endpoint) is loopback


@pytest.mark.parametrize("bind", ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.2:5555"])
def test_beyond_loopback_without_keys_refuses_to_start(bind):
    with pytest.raises(ValueError, match="without CURVE keys"):
        ServerConfig(bind=bind, security=SecurityConfig(insecure_loopback=True))
    # The server object checks again, in case a config was built some other way.
    cfg = ServerConfig(bind="tcp://127.0.0.1:*", security=SecurityConfig(insecure_loopback=True))
    object.__setattr__(cfg, "bind", bind)
    with pytest.raises(ValueError, match="without CURVE keys"):
        InferenceServer({"p": tiny_policy()}, cfg)


def test_loopback_without_keys_needs_the_explicit_flag():
    with pytest.raises(ValueError, match="--insecure-loopback"):
        ServerConfig(bind="tcp://127.0.0.1:5555")


def test_cli_refuses_beyond_loopback_before_loading_anything(capsys, tmp_path):
    rc = main(["serve", "--policy", f"pick={tmp_path / 'no-such-ckpt'}", "--bind", "tcp://0.0.0.0:5999"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "refusing to serve tcp://0.0.0.0:5999 without CURVE keys" in err


def test_cli_rejects_bad_policy_args_and_unknown_config_keys(capsys, tmp_path):
    assert main(["serve", "--policy", "nameonly", "--insecure-loopback"]) == 2
    assert "NAME=CHECKPOINT" in capsys.readouterr().err
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("bind: tcp://127.0.0.1:5555\nbatching:\n  max_bach: 4\n")
    assert main(["serve", "--config", str(cfg), "--policy", "a=b", "--insecure-loopback"]) == 2
    err = capsys.readouterr().err
    assert "serve.yaml" in err and "batching.max_bach" in err


def test_config_refuses_keys_files_without_server_key():
    with pytest.raises(ConfigError, match="server's own key"):
        from_dict(ServerConfig, {"bind": "tcp://127.0.0.1:1", "security": {"clients": "c.txt"}})


def test_client_refuses_plaintext_beyond_loopback():
    with pytest.raises(ValueError, match="unencrypted"):
        ZmqTransport("tcp://10.1.2.3:5555")


def test_keygen_writes_private_secret_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["keygen", "robot7", "--dir", str(tmp_path / "k")]) == 0
    secret = tmp_path / "k" / "robot7.key_secret"
    public = tmp_path / "k" / "robot7.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    pair = curve.load_keypair(secret)
    assert pair.secret and pair.public == curve.load_keypair(public, need_secret=False).public
    assert "secret-key" not in public.read_text()
    out = capsys.readouterr().out
    assert pair.public.decode() in out
    assert main(["keygen", "robot7", "--dir", str(tmp_path / "k")]) == 2
    assert "exists" in capsys.readouterr().err
    assert curve.load_keypair(secret) == pair  # the existing key survived


def test_secret_key_readable_by_others_is_refused(tmp_path):
    _, secret = curve.generate(tmp_path, "srv")
    os.chmod(secret, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        curve.load_keypair(secret)


def test_allowed_keys_file_parsing(tmp_path):
    pub, _ = curve.generate(tmp_path, "a")
    key_a = curve.load_keypair(pub, need_secret=False).public
    good = tmp_path / "ok.txt"
    good.write_text(f"# comment\n\n{key_a.decode()}  # arm 1\na.key\n#\n")
    assert curve.load_allowed_keys(good) == {key_a}
    bad = tmp_path / "bad.txt"
    bad.write_text("not-a-key\n")
    with pytest.raises(ValueError, match=r"bad.txt:1"):
        curve.load_allowed_keys(bad)
