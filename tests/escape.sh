# Sourced by tests/run.sh and tests/integration/lib.sh: the one escaping of
# a field in the results file (\ -> \\, newline -> \n, tab -> \t, CR -> \r;
# run.sh turns it into JSON, printf %b turns it back).
ry_esc() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//$'\n'/\\n}
	s=${s//$'\t'/\\t}
	s=${s//$'\r'/\\r}
	printf '%s' "$s"
}
