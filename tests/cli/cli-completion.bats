#!/usr/bin/env bats
# The completion files under real bash, zsh and fish, driven on a terminal
# (tmux send-keys / capture-pane): KEY= completes with no space after the =,
# task ids come from the daemon, fish offers a verb once. (cli-docs.bats
# checks that the files know every command and option.)

load helpers
load cli-helpers

setup() {
    command -v tmux >/dev/null || skip "tmux is not installed (.ci/deps installs it)"
    plot_setup
    cli_config 2
    TMUX_SOCK="$BATS_TEST_TMPDIR/tmux.sock"
}

teardown() {
    tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
    cli_teardown
}

# shell_start SHELL: an interactive SHELL with plot's completion loaded and
# the prompt "> ", plot (the build under test) first on PATH.
shell_start() {
    local env="env -i HOME=$BATS_TEST_TMPDIR TERM=xterm PATH=$PLOT_BINDIR:/usr/bin:/bin"
    env+=" PLOT_SOCKET=$PLOT_SOCKET PLOT_NO_AUTOSTART=1 NO_COLOR=1"
    case "$1" in
    bash) tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 150 -y 20 "$env bash --norc --noprofile -i"
          send "source '$ROOT/completions/plot.bash'; PS1='> '" ;;
    zsh)  tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 150 -y 20 "$env zsh -f -i"
          send "fpath=('$ROOT/completions' \$fpath); autoload -U compinit; compinit -u -D; PS1='> '" ;;
    fish) tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 150 -y 20 "$env fish --no-config -i"
          send "source '$ROOT/completions/plot.fish'; function fish_prompt; echo '> '; end" ;;
    esac
    wait_until last_line_is '^> ?$'
}
send() { tmux -S "$TMUX_SOCK" send-keys "$1" Enter; }
screen() { tmux -S "$TMUX_SOCK" capture-pane -p; }
screen_has() { screen | grep -qE -- "$1"; }
last_line_is() { [[ "$(screen | sed '/^$/d' | tail -n 1)" =~ $1 ]]; }
# type TEXT then Tab; then X, so a space the shell added shows before the X
complete_then_x() {
    tmux -S "$TMUX_SOCK" send-keys "$1" Tab
    wait_until -t 5 screen_has "^> $2"
    tmux -S "$TMUX_SOCK" send-keys X
}


key_eq_nospace() {
    command -v "$1" >/dev/null || { echo "# $1 is not installed (.ci/deps installs it)" >&2; return 1; }
    shell_start "$1"
    complete_then_x "plot limits set max_ru" "plot limits set max_running="
    wait_until -t 5 screen_has '^> plot limits set max_running=X$'
}

task_ids() {
    command -v "$1" >/dev/null || { echo "# $1 is not installed (.ci/deps installs it)" >&2; return 1; }
    plotd_start
    submit -m slow "$(words 400)"
    shell_start "$1"
    local v
    for v in tail status result cancel wait; do
        complete_then_x "plot $v " "plot $v $ID"
        wait_until -t 5 screen_has "^> plot $v $ID X\$" # an id is whole: a space
        tmux -S "$TMUX_SOCK" send-keys C-u
        wait_until last_line_is '^> ?$'
    done
}

@test "fish: limits and daemon offer their verb once, then the keys" {
    command -v fish >/dev/null || { echo "# fish is not installed (.ci/deps installs it)" >&2; return 1; }
    shell_start fish
    tmux -S "$TMUX_SOCK" send-keys "plot limits " Tab
    wait_until -t 5 screen_has 'get'
    run -0 screen
    assert_output --regexp 'set'
    refute_output --partial 'max_units='
    tmux -S "$TMUX_SOCK" send-keys C-u
    wait_until last_line_is '^> ?$'
    tmux -S "$TMUX_SOCK" send-keys "plot limits set " Tab
    wait_until -t 5 screen_has 'max_units='
    run -0 bash -c "tmux -S '$TMUX_SOCK' capture-pane -p | sed '1,/^> plot limits set/d'"
    refute_output --regexp '(^| )(get|set)( |$)'
    tmux -S "$TMUX_SOCK" send-keys C-u
    wait_until last_line_is '^> ?$'
    tmux -S "$TMUX_SOCK" send-keys "plot daemon stop " Tab
    sleep_free_check() { screen_has '^> plot daemon stop'; }
    wait_until -t 5 sleep_free_check
    run -0 bash -c "tmux -S '$TMUX_SOCK' capture-pane -p | sed '1,/^> plot daemon stop/d'"
    refute_output --regexp '(^| )(start|restart|reload|status)( |$)'
}

@test "bash: limits set KEY= completes with no space after the =" { key_eq_nospace bash; }
@test "zsh: limits set KEY= completes with no space after the =" { key_eq_nospace zsh; }
@test "fish: limits set KEY= completes with no space after the =" { key_eq_nospace fish; }
@test "bash: tail, status, result, cancel and wait complete task ids from the daemon" { task_ids bash; }
@test "zsh: tail, status, result, cancel and wait complete task ids from the daemon" { task_ids zsh; }
@test "fish: tail, status, result, cancel and wait complete task ids from the daemon" { task_ids fish; }
