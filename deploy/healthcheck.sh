#!/bin/bash
# railyard-healthcheck HOST PORT PATH: exit 0 when http://HOST:PORT/PATH
# answers 200, 1 otherwise.  The worker serves /healthz on 127.0.0.1:9187
# by default; a kubelet's httpGet probe connects to the pod's IP, not to
# its loopback, so probes run this inside the container instead.  Bash's
# /dev/tcp: no curl or wget needed in the image.
host=${1:-127.0.0.1} port=${2:-9187} path=${3:-/healthz}
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$host" >&3
read -r -t 5 proto status _ <&3 || exit 1
exec 3<&-
[[ $proto == HTTP/* && $status == 200 ]]
