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
