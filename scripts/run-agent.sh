#!/usr/bin/env bash
# Quick start (1): install dependencies, build, and run the agent on this machine.
# Standalone (pod identities from cgroup paths) when no Kubernetes cluster is configured.
# Metrics: http://127.0.0.1:9742/metrics — events: podgauge tail --agent http://127.0.0.1:9742
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/userspace/podgauge agent "$@"
