#!/usr/bin/env bash
#
# tests/coverage-harvest.sh BINDIR CONNINFO DIR     (used when RY_COVERAGE is set)
#
# Appends the PL/pgSQL statement counts (plpgsql_check's profiler) of every
# database of the test cluster to DIR/plpgsql.tsv, and the call counts of
# the SQL-language functions to DIR/sqlfunc.tsv, one row per database and
# statement (function): database, function, ...  The counts live in the
# server's shared memory, per database, until it stops: tests/run.sh calls
# this at the end and lib.sh's pg_restart before every restart, and
# scripts/coverage-report adds them up.
set -uo pipefail
bindir=$1 conn=$2 dir=$3
mkdir -p "$dir"
while IFS= read -r db; do
	"$bindir/psql" -X -q -d "$conn dbname=$db" \
		-c "CREATE EXTENSION IF NOT EXISTS plpgsql_check SCHEMA public" >/dev/null 2>&1 || continue
	"$bindir/psql" -X -A -t -F $'\t' -d "$conn dbname=$db" -c "
		SELECT current_database(), p.proname, s.stmtid, coalesce(s.parent_stmtid, -1),
		       coalesce(s.parent_note, ''), s.lineno, s.exec_stmts, s.stmtname
		  FROM pg_proc p, public.plpgsql_profiler_function_statements_tb(p.oid::regprocedure) s
		 WHERE p.pronamespace = 'railyard'::regnamespace
		   AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')" \
		>>"$dir/plpgsql.tsv" 2>/dev/null
	"$bindir/psql" -X -A -t -F $'\t' -d "$conn dbname=$db" -c "
		SELECT current_database(), p.proname, coalesce(f.calls, 0)
		  FROM pg_proc p LEFT JOIN pg_stat_user_functions f ON f.funcid = p.oid
		 WHERE p.pronamespace = 'railyard'::regnamespace
		   AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')" \
		>>"$dir/sqlfunc.tsv" 2>/dev/null
done < <("$bindir/psql" -X -A -t -d "$conn dbname=postgres" \
	-c "SELECT datname FROM pg_database WHERE datallowconn AND datname NOT IN ('postgres', 'template1')")
