# Sourced by throughput.sh and floor.sh.
# rate N CMD ARGS...: runs/s of $total copies of the command, N at a time (xargs -P);
# a failed run fails the script.
rate() {
    local n=$1; shift
    local start end
    start=$(date +%s.%N)
    seq "$total" | xargs -P "$n" -I{} "$@" >/dev/null
    end=$(date +%s.%N)
    python3 -c "print(f'{$total / ($end - $start):.0f}')"
}
