#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
#
# The loud line of a CI gate whose tool is not on this machine:
#
#   sh .ci/skip.sh <gate> <why...>
#
# A gate's make target (.ci/ci.mk) calls it instead of running, then
# succeeds. Under `make ci` (which sets CI_SKIPLOG) the line is also
# recorded, and make ci lists every skipped gate again at the end. .ci/run
# installs the tools first, so on CI a skip means an install failed (its
# reason is printed in .ci/run's "tools" section). `make test` never skips.
gate=${1:?usage: skip.sh <gate> <why>}
shift
why="$*"
printf '\n!!!!!!!!\nSKIPPED: %s: %s\n!!!!!!!!\n' "$gate" "$why"
if [ -n "${CI_SKIPLOG:-}" ]; then
    printf '%s: %s\n' "$gate" "$why" >> "$CI_SKIPLOG"
fi
