#!/usr/bin/env bash
# Run a dredux job on a Dask cluster on this machine: one `dask scheduler`, N
# `dask worker` processes (Dask's own commands), then `dredux run` against them.
# The cluster stops when the job ends, fails or is interrupted (Ctrl-C).
#
#   cluster/local.sh [-n WORKERS] [-t THREADS] JOB.toml [dredux run options...]
#   cluster/local.sh -n 2 examples/gaussian.toml --backend cpu
#
# The same commands, with --host set to a reachable address, build a cluster
# across machines by hand; on HPC systems use slurm/ or pbs/ instead.

# ---- edit these lines (or pass -n / -t) ----------------------------------
WORKERS="${WORKERS:-2}"   # worker processes
THREADS="${THREADS:-1}"   # threads per worker (kernels release the GIL)
HOST="${HOST:-127.0.0.1}" # address the scheduler and workers listen on
# --------------------------------------------------------------------------

set -euo pipefail

usage() { sed -n '6,7p' "$0" | sed 's/^# *//'; }

while getopts "n:t:h" opt; do
    case "$opt" in
        n) WORKERS="$OPTARG" ;;
        t) THREADS="$OPTARG" ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then usage >&2; exit 2; fi
job="$1"; shift
command -v dask >/dev/null || { echo "local.sh: no 'dask' command; activate the" \
    "environment where dredux is installed" >&2; exit 2; }

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/dredux-local.XXXXXX")"
sched_file="$run_dir/scheduler.json"
pids=()
cleanup() {
    status=$?
    # workers first: a worker whose scheduler is gone waits for it before exiting
    for ((k = ${#pids[@]} - 1; k >= 0; k--)); do
        kill -TERM "${pids[k]}" 2>/dev/null || true
        wait "${pids[k]}" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        echo "local.sh: the job failed (status $status); cluster logs:" >&2
        tail -n 20 "$run_dir"/*.log >&2 || true
    fi
    rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DASK_TEMPORARY_DIRECTORY="$run_dir" dask scheduler --host "$HOST" --port 0 --dashboard-address "$HOST:0" \
    --scheduler-file "$sched_file" >"$run_dir/scheduler.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do [ -s "$sched_file" ] && break; sleep 0.1; done
[ -s "$sched_file" ] || { echo "local.sh: the scheduler did not start" >&2; exit 1; }

for k in $(seq "$WORKERS"); do
    dask worker --scheduler-file "$sched_file" --host "$HOST" --nthreads "$THREADS" \
        --name "local-$k" --dashboard-address "$HOST:0" --local-directory "$run_dir" \
        >"$run_dir/worker-$k.log" 2>&1 &
    pids+=($!)
done

# in the background, so that a SIGTERM to this script reaches the job at once
# (and Ctrl-C too: background commands of a script ignore SIGINT)
dredux run "$job" --scheduler "$sched_file" --wait-workers "$WORKERS" "$@" &
job_pid=$!
trap 'kill -TERM "$job_pid" 2>/dev/null || true' INT TERM
status=0
wait "$job_pid" || status=$?
while kill -0 "$job_pid" 2>/dev/null; do  # wait was cut short by a signal
    status=0
    wait "$job_pid" || status=$?
done
exit "$status"
