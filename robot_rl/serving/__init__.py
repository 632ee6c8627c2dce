"""Inference serving: wire protocol, server, client.

    wire.py     msgpack header + raw array frames; dtype whitelist and limits; typed errors
    config.py   ServerConfig (typed, strict) and the loopback/CURVE rule
    curve.py    key files, allowed-key lists, the ZAP authenticator
    worker.py   one inference thread per policy: dynamic batching, hot weight updates
    server.py   InferenceServer: the I/O thread, ping, status
    metrics.py  latency percentiles, Prometheus text over HTTP
    clock.py    robot/server clock offset from pings (min-RTT filter)
    client.py   InferenceClient over a narrow Transport (ZmqTransport for real use)
    cli.py      `robot-rl serve`, keygen_cli.py `robot-rl keygen`

Import the submodules directly; this file imports nothing so `robot-rl --help` stays fast.
"""
