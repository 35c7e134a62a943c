#!/usr/bin/env bash
# Start-up cost (docs/ARCHITECTURE.md, pkg/lazylib): the commands a CI
# system runs for every pipeline do not load libcurl, libxml2, libarchive,
# libsystemd, OpenSSL, or the GSSAPI and LDAP libraries of the libpq linked
# in; a command loads one when it first needs it (libpq asks GSSAPI for
# credentials on a TCP connection, LDAP for an ldap:// service line,
# OpenSSL for TLS and SCRAM); the
# worker loads them all at start, so a broken install stops it there with
# status 70 and one line naming the library, while commands that need none
# still work.
. "$(dirname "$0")/lib.sh"

LAZY_LIBS=(libcurl.so.4 libxml2.so.2 libarchive.so.13 libsystemd.so.0 libgssapi_krb5.so.2
	libldap-2.5.so.0 libcrypto.so.3 libssl.so.3)

# traced NAME ARGS...: runs railyard ARGS with the dynamic loader's file
# trace in NAME.trace (that process only, not its children); its status.
traced() {
	local name=$1 pid rc=0
	shift
	LD_DEBUG=files LD_DEBUG_OUTPUT=$PWD/$name.ld "$RY" "$@" &
	pid=$!
	wait "$pid" || rc=$?
	mv "$name.ld.$pid" "$name.trace"
	return "$rc"
}

# loaded NAME: which of LAZY_LIBS the traced run NAME loaded, on one line.
loaded() {
	local lib got=()
	for lib in "${LAZY_LIBS[@]}"; do
		if grep -q "file=$lib \[" "$1.trace"; then got+=("$lib"); fi
	done
	echo "${got[*]}"
}

loads_none() {
	local got
	got=$(loaded "$1")
	[[ -z $got ]] || fail "$1: loaded $got, expected none of them"
}

version_loads_none() {
	traced version --version >/dev/null
	loads_none version
}

submit_loads_none() {
	local id
	id=$(traced submit submit "$RY_ROOT/examples/shop.yaml")
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id', not a pipeline id"
	loads_none submit
}

xml_loaded_on_first_use() {
	mkdir -p repo/billing
	echo '<project><groupId>com.example</groupId><artifactId>billing</artifactId></project>' \
		>repo/billing/pom.xml
	local out
	out=$(traced deps deps scan repo --dry-run)
	[[ $out == *billing*maven* ]] || fail "deps scan did not find the Maven service: $out"
	[[ $(loaded deps) == libxml2.so.2 ]] ||
		fail "deps scan of a pom.xml loaded '$(loaded deps)', expected libxml2.so.2 alone"
}

# libpq over TCP asks GSSAPI whether a Kerberos credential cache exists
# (gssencmode=prefer, its default), through pkg/lazylib: libgssapi_krb5 is
# loaded then, libldap is not, and without a cache libpq goes on without
# GSSAPI.  TCP through a pgbouncer on 127.0.0.1 (the test cluster listens on
# a Unix socket only).  Without the library, the command stops there, before
# sending anything: status 70, one line naming the package, nothing stored.
tcp_connection_loads_gssapi_on_first_use() {
	ry_pgbouncer tcp session tcp
	export RAILYARD_DB=$BOUNCER_DB
	local id out rc=0
	id=$(traced tcp submit "$RY_ROOT/examples/shop.yaml") ||
		fail "railyard submit over TCP failed: $id"
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit over TCP printed '$id', not a pipeline id"
	[[ $(loaded tcp) == libgssapi_krb5.so.2 ]] ||
		fail "a TCP connection loaded '$(loaded tcp)', expected libgssapi_krb5.so.2 alone"

	local before
	before=$(sql "SELECT count(*) FROM railyard.pipelines")
	mkdir -p broken
	: >broken/libgssapi_krb5.so.2	# not a library: dlopen must fail
	out=$(LD_LIBRARY_PATH=$PWD/broken "$RY" submit "$RY_ROOT/examples/shop.yaml" 2>&1) || rc=$?
	((rc == 70)) || fail "railyard submit without libgssapi_krb5 exited $rc, expected 70: $out"
	[[ $out == "railyard: error: cannot load libgssapi_krb5.so.2: "*"; install libgssapi-krb5-2 (scripts/install-deps.sh)" ]] ||
		fail "not one line naming libgssapi_krb5.so.2 and its package: $out"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines") == "$before" ]] ||
		fail "a submission that could not connect stored something"
}

# A service file's ldap:// line makes libpq look the parameters up in LDAP,
# through pkg/lazylib: libldap is loaded then.  The server does not answer,
# so libpq goes on to the service's next lines, which name the test cluster.
ldap_service_loads_ldap_on_first_use() {
	cat >services.conf <<-CONF
		[railyard]
		ldap://127.0.0.1:9/dc=example,dc=com?uniqueMember?one?(cn=railyard)
		host=$RY_PGHOST
		port=$RY_PGPORT
		user=$RY_PGUSER
		dbname=$RY_DBNAME
	CONF
	local id
	id=$(PGSERVICEFILE=$PWD/services.conf RAILYARD_DB="service=railyard" \
		traced ldap submit "$RY_ROOT/examples/shop.yaml") || fail "railyard submit failed: $id"
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit printed '$id', not a pipeline id"
	# libldap's SASL plugins link libcrypto themselves (digest-md5, scram).
	local want=libldap-2.5.so.0
	if grep -q "file=libcrypto.so.3 \[0\];  needed by .*/sasl2/" ldap.trace; then
		want+=" libcrypto.so.3"
	fi
	[[ $(loaded ldap) == "$want" ]] ||
		fail "an ldap:// service loaded '$(loaded ldap)', expected $want"
}

# TLS and SCRAM through pkg/lazylib: a pgbouncer on 127.0.0.1 that asks
# for TLS (a certificate made here for 127.0.0.1) and a SCRAM password.
# railyard submit with sslmode=verify-full checks the certificate's
# address against the host, authenticates, and stores the pipeline: the
# connection loaded libcrypto and libssl (and GSSAPI, as any TCP one), and
# pgbouncer saw a TLS login.  A wrong password is refused by SCRAM; without
# libssl the command stops before sending anything: status 70.
tls_and_scram_load_openssl_on_first_use() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout bouncer.key -out bouncer.crt 2>openssl.err || fail "openssl: $(cat openssl.err)"
	chown "$RY_PGUSER" bouncer.key
	chmod 755 "$PWD"
	# shellcheck disable=SC2034  # read by ry_pgbouncer (lib.sh), as the next
	RY_BOUNCER_INI="auth_type = scram-sha-256
client_tls_sslmode = require
client_tls_key_file = $PWD/bouncer.key
client_tls_cert_file = $PWD/bouncer.crt"
	# shellcheck disable=SC2034
	RY_BOUNCER_USERS="\"$RY_PGUSER\" \"lazy-secret\""
	export PGPASSWORD=lazy-secret
	ry_pgbouncer tls session tcp
	unset PGPASSWORD
	local db="$BOUNCER_DB sslmode=verify-full sslrootcert=$PWD/bouncer.crt" id out rc=0
	id=$(RAILYARD_DB="$db password=lazy-secret" traced tls submit "$RY_ROOT/examples/shop.yaml") ||
		fail "railyard submit over TLS failed: $id"
	[[ $id =~ ^[0-9]+$ ]] || fail "railyard submit over TLS printed '$id', not a pipeline id"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines WHERE id = $id") == 1 ]] ||
		fail "pipeline $id is not stored"
	[[ $(loaded tls) == "libgssapi_krb5.so.2 libcrypto.so.3 libssl.so.3" ]] ||
		fail "a TLS connection loaded '$(loaded tls)', expected GSSAPI, libcrypto and libssl"
	grep -q "login attempt: db=$RY_DBNAME user=$RY_PGUSER tls=TLS" "$RY_WORKDIR/bouncer-tls/pgbouncer.log" ||
		fail "pgbouncer saw no TLS login: $(grep 'login attempt' "$RY_WORKDIR/bouncer-tls/pgbouncer.log")"

	local before
	before=$(sql "SELECT count(*) FROM railyard.pipelines")
	out=$(RAILYARD_DB="$db password=wrong" "$RY" submit "$RY_ROOT/examples/shop.yaml" 2>&1) && rc=0 || rc=$?
	((rc != 0)) || fail "a wrong password was accepted"
	[[ $out == *"password authentication failed"* || $out == *"SASL authentication failed"* ]] ||
		fail "a wrong password did not fail authentication: $out"
	mkdir -p broken-ssl
	: >broken-ssl/libssl.so.3	# not a library: dlopen must fail
	out=$(LD_LIBRARY_PATH=$PWD/broken-ssl RAILYARD_DB="$db password=lazy-secret" \
		"$RY" submit "$RY_ROOT/examples/shop.yaml" 2>&1) && rc=0 || rc=$?
	((rc == 70)) || fail "railyard submit over TLS without libssl exited $rc, expected 70: $out"
	[[ $out == "railyard: error: cannot load libssl.so.3: "*"; install libssl3 (scripts/install-deps.sh)" ]] ||
		fail "not one line naming libssl.so.3 and its package: $out"
	[[ $(sql "SELECT count(*) FROM railyard.pipelines") == "$before" ]] ||
		fail "a submission that could not connect stored something"
}

worker_loads_all_at_start() {
	ry_newdb idle	# nothing to run: it exits once started
	traced worker worker --name lazy --exit-when-idle --throttle off --http-listen off \
		--workdir "$PWD/w" >worker.log 2>&1 || fail "the worker failed: $(tail -n 5 worker.log)"
	[[ $(loaded worker) == "${LAZY_LIBS[*]}" ]] ||
		fail "the worker loaded '$(loaded worker)', expected all of ${LAZY_LIBS[*]}"
}

broken_install_stops_worker_at_start() {
	mkdir -p broken
	: >broken/libcurl.so.4	# not a library: dlopen must fail
	local out rc=0
	out=$(LD_LIBRARY_PATH=$PWD/broken "$RY" --version 2>&1) ||
		fail "railyard --version needs no libcurl, yet failed: $out"
	out=$(LD_LIBRARY_PATH=$PWD/broken timeout 60 "$RY" worker --name broken --exit-when-idle \
		--throttle off --http-listen off --workdir "$PWD/w" 2>&1) || rc=$?
	echo "$out"
	((rc == 70)) || fail "the worker exited $rc, expected 70"
	[[ $out == "railyard: error: cannot load libcurl.so.4: "*"; install libcurl4 (scripts/install-deps.sh)" ]] ||
		fail "not one line naming libcurl.so.4 and libcurl4: $out"
}

run_scenario "railyard --version loads none of the eight libraries" version_loads_none
run_scenario "railyard submit loads none of the eight libraries" submit_loads_none
run_scenario "deps scan of a Maven project loads libxml2 on first use, only it" xml_loaded_on_first_use
run_scenario "libpq over TCP loads libgssapi_krb5 on first use, only it; without it: status 70, nothing stored" \
	tcp_connection_loads_gssapi_on_first_use
run_scenario "an ldap:// service line loads libldap on first use, only it (and what its SASL plugins link)" \
	ldap_service_loads_ldap_on_first_use
run_scenario "TLS (verify-full) and SCRAM load libcrypto and libssl on first use; a wrong password fails; without libssl: status 70" \
	tls_and_scram_load_openssl_on_first_use
run_scenario "the worker loads all eight at start" worker_loads_all_at_start
run_scenario "a missing library stops the worker at start: status 70, one line" \
	broken_install_stops_worker_at_start
