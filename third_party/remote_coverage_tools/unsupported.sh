#!/bin/sh
# See BUILD: coverage tools are not available in vrpc's offline build.
echo "bazel coverage is not supported in vrpc's offline build" >&2
exit 1
