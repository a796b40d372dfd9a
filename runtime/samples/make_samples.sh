#!/usr/bin/env bash
# Regenerates the audio spotkit ships: synthetic speech (espeak-ng) separated by long silences,
# so the demo and the tests exercise voice-activity detection and never depend on downloads.
# Needs: espeak-ng, sox, ffmpeg (Debian packages). Output is deterministic for a given espeak-ng build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tests_data="$here/../../tests/data"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { # say INDEX "TEXT"
  espeak-ng -v en-us -s 150 -w "$work/raw_$1.wav" "$2"
  sox "$work/raw_$1.wav" -r 16000 -c 1 -b 16 "$work/s_$1.wav"
}
gap() { # gap INDEX SECONDS
  sox -n -r 16000 -c 1 -b 16 "$work/g_$1.wav" trim 0 "$2"
}

say 1 "Welcome to spot kit. This recording tests speech detection on cheap spot graphics cards."
gap 1 6
say 2 "The first segment is short. Silence follows, and silence is never sent to the model."
gap 2 8
say 3 "When the cloud takes a machine back, the work in flight returns to the queue and another node finishes it."
gap 3 5
say 4 "Every result is cached by content hash, so the same audio is never transcribed twice."
gap 4 7
say 5 "Thank you for listening. Goodbye."

gap 0 3
sox "$work/g_0.wav" "$work/s_1.wav" "$work/g_1.wav" "$work/s_2.wav" "$work/g_2.wav" \
    "$work/s_3.wav" "$work/g_3.wav" "$work/s_4.wav" "$work/g_4.wav" "$work/s_5.wav" "$work/g_0.wav" \
    "$work/demo.wav"
sox "$work/demo.wav" "$here/demo.flac"

# Small variants in other containers for the decoder tests (first 12 seconds).
sox "$work/demo.wav" "$work/head.wav" trim 0 12
ffmpeg -loglevel error -y -i "$work/head.wav" -codec:a libmp3lame -b:a 32k "$tests_data/speech.mp3"
ffmpeg -loglevel error -y -i "$work/head.wav" -codec:a aac -b:a 32k "$tests_data/speech.m4a"
echo "wrote $here/demo.flac, $tests_data/speech.mp3, $tests_data/speech.m4a"
