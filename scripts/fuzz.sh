#!/usr/bin/env bash
echo "fuzzing: not set up yet" >&2; exit 1
