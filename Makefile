# The README's two commands: `make demo` and `make test`. Each creates .venv when it is
# missing and installs everything into it; nothing needs to be typed first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Off-screen MuJoCo rendering (EGL with a GPU, OSMesa without) is picked in robot_rl/gl.py.
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp
SYSTEM_LIBS := libosmesa6

.PHONY: demo test lint format system-deps venv clean bench-env bench-d3rlpy bench-metaworld bench-lerobot

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py setup.cfg
	@$(MAKE) --no-print-directory system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=77,<80" wheel
	$(PY) -m pip install --quiet --progress-bar off -e ".[dev]"
	@touch $(STAMP)

# System packages: installed when running as root, otherwise named in one message.
system-deps:
	@missing=""; for p in $(SYSTEM_LIBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "robot-rl needs the Debian package(s)$$missing (off-screen MuJoCo rendering)."; \
	    echo "Install them with: sudo apt-get install$$missing   then run make again."; exit 1; \
	  fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/robot-rl demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks (bench/*.py) compare against peers installed here; see README "Benchmarks".
bench-env: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"

# d3rlpy (bench/learner_throughput.py) pins gymnasium==1.0.0, which clashes with ours, so it
# gets its own venv. torch and the rest are shared with .venv through a .pth line that comes
# after the venv's own site-packages (its gymnasium wins there; .venv is never modified).
bench-d3rlpy: $(STAMP)
	@test -x .venv-d3rlpy/bin/python || $(PYTHON) -m venv .venv-d3rlpy
	.venv-d3rlpy/bin/python -c "import sysconfig, pathlib, sys; pathlib.Path(sysconfig.get_paths()['purelib'], '_robot_rl_shared.pth').write_text(sys.argv[1] + '\\n')" "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	.venv-d3rlpy/bin/python -m pip install --quiet "d3rlpy==2.8.1" "gymnasium==1.0.0"

# Meta-World pins mujoco==3.3.0 (we use 3.3.x newer), so it lives in its own venv; used by
# bench/sim_throughput.py through a subprocess.
bench-metaworld: .venv-metaworld/.installed
.venv-metaworld/.installed:
	$(PYTHON) -m venv .venv-metaworld
	.venv-metaworld/bin/pip install --quiet "metaworld>=3.1,<4" "packaging>=23"
	@touch $@

# LeRobot (bench/policy_latency.py's peer) pins torch<2.11 and diffusers<0.36, which clash with
# ours, so it gets its own venv. Like bench-d3rlpy it reuses .venv's torch through a .pth line
# (the model code runs on our torch, so both sides are timed on the same kernels) and installs
# lerobot without its hardware/hub extras: only what importing its diffusion policy needs.
bench-lerobot: .venv-lerobot/.installed
.venv-lerobot/.installed: $(STAMP)
	@test -x .venv-lerobot/bin/python || $(PYTHON) -m venv .venv-lerobot
	.venv-lerobot/bin/python -c "import sysconfig, pathlib, sys; pathlib.Path(sysconfig.get_paths()['purelib'], '_robot_rl_shared.pth').write_text(sys.argv[1] + '\\n')" "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	.venv-lerobot/bin/python -m pip install --quiet --no-deps "lerobot==0.4.4" "draccus==0.10.0" "einops>=0.8,<0.9" \
	  mergedeep "pyyaml-include<2" typing-inspect mypy-extensions toml "accelerate>=1.10,<2" "pyserial>=3.5,<4" \
	  "deepdiff>=7,<9" orderly-set "termcolor>=2.4,<4" "jsonlines>=4,<5" "av>=15,<16"
	.venv-lerobot/bin/python -m pip install --quiet "datasets>=4,<5"
	@touch $@

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache
