#!/usr/bin/env bash
echo "bench: not set up yet" >&2; exit 1
