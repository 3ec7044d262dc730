# Sourced by dist_test.sh and slurm_test.sh: answer --help (the launcher's usage, then
# tools/test.py's options) and missing arguments (usage and one error line, exit code 2) before
# anything starts torchrun or srun.
#   launcher_help USAGE DESCRIPTION MIN_ARGS MISSING_ERROR "$@"
launcher_help() {
    local usage=$1 description=$2 min_args=$3 missing=$4
    shift 4
    for arg in "$@"; do
        if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
            echo "$usage"
            echo "$description"
            echo "tools/test.py's options:"
            echo
            python "$(dirname "${BASH_SOURCE[0]}")/test.py" --help
            exit 0
        fi
    done
    if [ $# -lt "$min_args" ]; then
        echo "$usage" >&2
        echo "error: $missing" >&2
        exit 2
    fi
}
