#!/usr/bin/env bats
# Every setting of plot.yaml is read by something: a row of the settings
# table whose struct member nothing outside lib/cfg reads is a knob that
# silently does nothing (tests/tools/settings-read.sh says which).

load cli-helpers

@test "every setting in the config table is read outside lib/cfg" {
    run --separate-stderr "$ROOT/tests/tools/settings-read.sh" "$ROOT"
    ((status < 128))
    assert_output --partial "settings, 0 unread"
    assert_equal "$status" 0
}
