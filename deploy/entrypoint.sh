#!/bin/sh
# railyard-entrypoint: starts `railyard worker` in a container.
#
#   - the database password comes from a secret mounted as a file
#     ($RAILYARD_SECRET_DIR/pgpass, a libpq password file); libpq refuses a
#     password file that others can read, and orchestrators mount secrets
#     root-owned or group-readable, so it is copied to $HOME/.pgpass, 0600,
#     owned by the worker (the config's db names it with passfile=).
#     Never an environment variable.
#   - labels come from the downward API: the pod annotation
#     railyard.dev/labels (a comma-separated list), read from
#     $RAILYARD_PODINFO_DIR/annotations; or from $RAILYARD_LABELS.
#   - the agent name is $RAILYARD_AGENT_NAME (the node's name), else the host name.
#   - everything else is in the worker config file, $RAILYARD_CONFIG.
# Arguments are passed on to `railyard worker`.
set -eu

config=${RAILYARD_CONFIG:-/etc/railyard/worker.conf}
secret_dir=${RAILYARD_SECRET_DIR:-/etc/railyard/secret}
podinfo_dir=${RAILYARD_PODINFO_DIR:-/etc/railyard/podinfo}
: "${HOME:=/var/lib/railyard}"

if [ -f "$secret_dir/pgpass" ]; then
	umask 077
	cp "$secret_dir/pgpass" "$HOME/.pgpass.tmp"
	chmod 0600 "$HOME/.pgpass.tmp"
	mv -f "$HOME/.pgpass.tmp" "$HOME/.pgpass"
	umask 022
fi

labels=${RAILYARD_LABELS:-}
if [ -z "$labels" ] && [ -f "$podinfo_dir/annotations" ]; then
	# Lines of key="value" (the value quoted as Go's %q would).
	labels=$(sed -n 's/^railyard\.dev\/labels="\(.*\)"$/\1/p' "$podinfo_dir/annotations")
fi

set -- --config "$config" "$@"
[ -n "$labels" ] && set -- --labels "$labels" "$@"
[ -n "${RAILYARD_AGENT_NAME:-}" ] && set -- --name "$RAILYARD_AGENT_NAME" "$@"
exec "${RAILYARD_BIN:-/usr/local/bin/railyard}" worker "$@"
