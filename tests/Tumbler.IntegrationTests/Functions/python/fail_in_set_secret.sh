#!/bin/sh
# A command rotation function that cannot reach its service in setSecret: exits 3 with a message on stderr.
event=$(cat)
case "$event" in
  *'"Step":"setSecret"'*) echo "setSecret: api.example.invalid refused the new key (HTTP 503)" >&2; exit 3 ;;
  *'"Step":"createSecret"'*) echo "not json at all: {{{" ; exit 0 ;;
esac
exit 0
