#!/bin/bash
# Container health probe: GET /healthz on the service's own port, without curl or wget in the
# image (fewer packages, fewer CVEs for Trivy to find). Exits 0 only on an HTTP 200.
#
# HEALTHCHECK_ADDR_VAR names the variable the service binds with (e.g. GATEWAY_ADDR), so the
# probe follows an operator who moves the port; HEALTHCHECK_PORT is the service's default.
set -euo pipefail

addr_var="${HEALTHCHECK_ADDR_VAR:?HEALTHCHECK_ADDR_VAR is not set}"
addr="${!addr_var:-0.0.0.0:${HEALTHCHECK_PORT:?HEALTHCHECK_PORT is not set}}"
port="${addr##*:}"

exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: healthcheck\r\nConnection: close\r\n\r\n' >&3
IFS=$' \r' read -r -t 5 _version status _rest <&3
exec 3<&-
[[ "$status" == "200" ]]
