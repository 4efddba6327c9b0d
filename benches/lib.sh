# Shared set-up of the benchmark scripts (sourced, from the repository root).

# bench_build [release|debug]: builds cordon and sets $bin to the built binary.
bench_build() {
    local profile="${1:-release}"
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if [ "$profile" = release ]; then
        cargo build --release --locked -q -p cordon
    else
        cargo build --locked -q -p cordon
    fi
    local target_dir
    target_dir="$(cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    bin="$target_dir/$profile/cordon"
}

# bench_as_user DIR NAME: cordon is for unprivileged users, so as root the benchmark measures
# as `cordon-test` (created if missing): $bin is installed as DIR/NAME, which that user can
# run, and $run_user is set. As anyone else, $run_user is empty and $bin stays.
bench_as_user() {
    run_user=""
    if [ "$(id -u)" -eq 0 ]; then
        id cordon-test >/dev/null 2>&1 || useradd -m -s /bin/bash cordon-test
        run_user=cordon-test
        mkdir -p "$1"
        chmod 0755 "$1"
        install -m 0755 "$bin" "$1/$2"
        bin="$1/$2"
    fi
}
