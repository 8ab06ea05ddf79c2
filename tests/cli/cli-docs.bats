#!/usr/bin/env bats
# The command table is the truth: man/plot.1 and the bash, zsh and fish
# completions must name every command, verb and option that
# `plot __complete-table` prints (which is what the parser accepts), and
# every key `plot limits set` takes (lib/cfg's runtime settings).

load cli-helpers

# Does file $2 (of kind $1: man, bash, zsh, fish) mention $3 ($4 = what)?
mentions() {
    local kind="$1" file="$2" what="$3" text
    if [[ "$kind" == man ]]; then
        text=$(sed 's/\\//g' "$file")        # roff: \-\-model -> --model
    else
        text=$(cat "$file")
    fi
    if [[ "$kind" == fish && "$what" == --* ]]; then
        what="-l ${what#--}"
    elif [[ "$kind" == fish && "$what" == -? ]]; then
        what="-s ${what#-}"
    fi
    grep -qF -- "$what" <<<"$text"
}

check_file() {
    local kind="$1" file="$2" missing=() kindword owner name
    while read -r kindword owner name; do
        case "$kindword" in
            command) name="$owner" ;;
            verb|key) ;;
            option) name="${name%=}" ;;
            *) continue ;;
        esac
        mentions "$kind" "$file" "$name" || missing+=("$kindword $owner $name")
    done <<<"$table"
    if ((${#missing[@]})); then
        printf '%s misses: %s\n' "$file" "${missing[@]}" >&2
        return 1
    fi
}

setup() {
    run -0 "$PLOT" __complete-table
    table="$output"
    [[ "$table" == *"command run"* ]]
}

@test "the command table lists every command with its options" {
    for c in run submit tail status result cancel queue stats limits models config daemon help; do
        assert_line "command $c"
    done
    assert_line "option run --model="
    assert_line "option run -m="
    assert_line "option run --detach"
    assert_line "option stats --prometheus"
    assert_line "verb daemon start"
    assert_line "option - --json"
    assert_line "key limits max_units"
    assert_line "key limits max_running"
    assert_line "key limits threads"
    refute_line --partial "__complete-table"
}

@test "man/plot.1 documents every command, verb and option" {
    check_file man "$ROOT/man/plot.1"
}

@test "the bash completion knows every command, verb and option" {
    check_file bash "$ROOT/completions/plot.bash"
    bash -n "$ROOT/completions/plot.bash"
}

@test "the zsh completion knows every command, verb and option" {
    check_file zsh "$ROOT/completions/_plot"
}

@test "the fish completion knows every command, verb and option" {
    check_file fish "$ROOT/completions/plot.fish"
}

@test "plot.1 documents every exit status of the table" {
    for code in 0 1 2 69 75 77 78 124 130; do
        sed 's/\\//g' "$ROOT/man/plot.1" | grep -A0 -x "\.B $code" >/dev/null ||
            fail "exit status $code is not documented"
    done
}

@test "the check catches a missing option" {
    # The guard itself must be able to fail: drop one option from a copy.
    grep -v -- '-l detach' "$ROOT/completions/plot.fish" >"$BATS_TEST_TMPDIR/plot.fish"
    run check_file fish "$BATS_TEST_TMPDIR/plot.fish"
    assert_failure
    assert_output --partial "option run --detach"
}

@test "plot help CMD shows each of the command's options" {
    while read -r kindword owner name; do
        [[ "$kindword" == option && "$owner" != - ]] || continue
        run -0 "$PLOT" help "$owner"
        assert_output --partial -- "${name%=}"
    done <<<"$table"
}
