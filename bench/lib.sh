# Shared set-up of the benchmark scripts: source it from the repository's
# root. It installs vegeta if missing, makes a work directory ($work), and
# kills the processes listed in $pids and removes $work on exit.

need() { command -v "$1" >/dev/null 2>&1; }
export PATH="$PATH:$(go env GOPATH)/bin"
need vegeta || go install github.com/tsenart/vegeta/v12@v12.13.0

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# cpu runs a command on core 1 and prints the CPU seconds it used (its own
# and its children's, from the shell's times); the command's output goes
# to $work/out.
cpu() {
	( taskset -c 1 "$@" >"$work/out" 2>&1; times >"$work/times" )
	awk 'NR==2 { split($1,u,"m"); split($2,s,"m"); sub("s","",u[2]); sub("s","",s[2]); print u[1]*60+u[2]+s[1]*60+s[2] }' "$work/times"
}

# answering waits, up to 5 s, until the URL $1 answers (a server just
# started).
answering() {
	for _ in $(seq 50); do
		curl -fs -o /dev/null "$1" && return 0
		sleep 0.1
	done
	echo "$1 did not answer in 5 s" >&2
	return 1
}
