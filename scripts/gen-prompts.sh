#!/usr/bin/env bash
# gen-prompts.sh - regenerate every file under prompts/ (the audio the gateway plays).
#
#   scripts/gen-prompts.sh            # writes prompts/*.wav and prompts/README.md
#   OUT_DIR=/tmp/p scripts/gen-prompts.sh
#
# Speech comes from espeak-ng (Mandarin), the hold music from sox's synth. Everything is
# written as WAV, mono, 8000 Hz, 16-bit signed PCM: the gateway converts to G.711 at load.
#
# Needs only the two Debian packages below; no network. It is idempotent: output is
# built in a temporary folder and a file in prompts/ is replaced only when its bytes
# changed (sox runs with dither off and a fixed seed, so reruns are byte-identical).
#
#   apt-get install -y --no-install-recommends espeak-ng sox
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/prompts}

# Voice: "cmn-latn-pinyin", not plain "cmn". In espeak-ng 1.51 (Debian 12) the "cmn"
# voice turns each character into pinyin and then reads that pinyin as *English*
# (espeak-ng issue #1028), which is not Mandarin at all. "cmn-latn-pinyin" uses the
# same dictionary but reads the pinyin as Mandarin with tones.
VOICE=${VOICE:-cmn-latn-pinyin}
# Speaking rate in espeak-ng "words" (here: syllables) per minute. 220 gives about
# 4.5 syllables/s, a normal IVR pace; higher is smaller but harder to follow.
SPEED=${SPEED:-220}
# Peak levels in dBFS.
SPEECH_PEAK=-3
HOLD_PEAK=-12

# The prompts: file stem | text as shown (README) | text as spoken | English.
# "12345" is spoken digit by digit the way Chinese phone numbers are read
# (幺二三四五, yāo èr sān sì wǔ); espeak-ng would otherwise read it as a quantity.
PROMPTS=(
  "greeting|您好，欢迎致电12345政务服务便民热线，正在为您转接，请稍候。|您好，欢迎致电幺二三四五政务服务便民热线，正在为您转接，请稍候。|Hello, thank you for calling the 12345 government service hotline. We are connecting you, please wait."
  "forwarded|您拨打的热线已并入12345政务服务便民热线，正在为您转接。|您拨打的热线已并入幺二三四五政务服务便民热线，正在为您转接。|The hotline you dialled has been merged into the 12345 government service hotline. We are connecting you."
  "survey|请对本次服务进行评价。满意请按1，基本满意请按2，不满意请按3。|请对本次服务进行评价。满意请按1，基本满意请按2，不满意请按3。|Please rate this service. Press 1 if satisfied, 2 if fairly satisfied, 3 if dissatisfied."
  "thanks|感谢您的评价，再见。|感谢您的评价，再见。|Thank you for your feedback. Goodbye."
  "still-waiting|坐席正忙，请您耐心等待。|坐席正忙，请您耐心等待。|All agents are busy, please continue to hold."
  "number-changed|您拨打的号码已调整，请拨打12345政务服务便民热线，谢谢。|您拨打的号码已调整，请拨打幺二三四五政务服务便民热线，谢谢。|The number you dialled has changed. Please call the 12345 government service hotline. Thank you."
)

# Hold music: one phrase of the C major pentatonic scale (C D E G A), 16 notes of 0.5 s
# = 8 s. It ends on D, which leads back to the opening E, and every note fades in and
# out to silence, so the file loops without a click.
HOLD_NOTE_S=0.5
HOLD_NOTES=(E5 G5 A5 G5 E5 D5 C5 D5 E5 G5 A5 C6 A5 G5 E5 D5)
declare -A FREQ=([C5]=523.25 [D5]=587.33 [E5]=659.26 [G5]=783.99 [A5]=880.00 [C6]=1046.50)

# Every sox call: repeatable (-R), no dither (-D, so output is deterministic), quiet.
SOX=(sox -R -D -V1)
# The one output format.
FMT=(-r 8000 -c 1 -b 16 -e signed-integer -t wav)

die() { echo "gen-prompts: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# preflight
# ---------------------------------------------------------------------------
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null ||
    die "$tool not found; install with: apt-get install -y --no-install-recommends espeak-ng sox"
done
espeak-ng --voices=cmn | awk 'NR > 1 { print $2 }' | grep -qixF -- "$VOICE" ||
  die "espeak-ng has no voice '$VOICE' (see: espeak-ng --voices=zh)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------
# checks on generated audio
# ---------------------------------------------------------------------------
# stat_of FILE KEY: one value of `sox FILE -n stat` (which reports on stderr).
stat_of() {
  sox "$1" -n stat 2>&1 | awk -F: -v k="$2" '$1 ~ "^"k { gsub(/ /, "", $2); print $2 }'
}

# check FILE MIN_SECONDS: right format, long enough, audible, not clipped.
check() {
  local f=$1 min_s=$2 rate chans bits enc dur rms peak
  rate=$(soxi -r "$f"); chans=$(soxi -c "$f"); bits=$(soxi -b "$f"); enc=$(soxi -e "$f")
  [[ $rate == 8000 && $chans == 1 && $bits == 16 && $enc == "Signed Integer PCM" ]] ||
    die "$f: format is ${rate} Hz, ${chans} ch, ${bits} bit, $enc"
  dur=$(soxi -D "$f")
  rms=$(stat_of "$f" "RMS     amplitude")
  peak=$(stat_of "$f" "Maximum amplitude")
  awk -v d="$dur" -v m="$min_s" -v r="$rms" -v p="$peak" \
    'BEGIN { exit !(d >= m && r >= 0.02 && p < 0.99) }' ||
    die "$f: failed check (duration ${dur}s, min ${min_s}s; RMS $rms; peak $peak)"
}

# ---------------------------------------------------------------------------
# speech
# ---------------------------------------------------------------------------
speak() {
  local name=$1 text=$2 phonemes
  # Refuse output that espeak-ng would read with the English rules (the 1.51 bug above,
  # or characters missing from the dictionary): it marks such stretches "(en)".
  phonemes=$(espeak-ng -v "$VOICE" -q -x "$text")
  [[ $phonemes != *"(en)"* ]] || die "$name: $VOICE reads part of the text as English: $phonemes"

  espeak-ng -v "$VOICE" -s "$SPEED" -w "$TMP/$name.raw.wav" "$text"
  # 22050 Hz from espeak-ng -> 8 kHz: headroom first (resampling can overshoot), trim
  # the silence at both ends, resample, normalise the peak, then pad 0.15 s / 0.25 s.
  "${SOX[@]}" "$TMP/$name.raw.wav" "${FMT[@]}" "$TMP/$name.wav" \
    gain -6 \
    silence 1 0.01 0.3% reverse silence 1 0.01 0.3% reverse \
    rate -v 8000 \
    gain -n "$SPEECH_PEAK" \
    pad 0.15 0.25
  rm -f "$TMP/$name.raw.wav"
  check "$TMP/$name.wav" 1.0
}

for entry in "${PROMPTS[@]}"; do
  IFS='|' read -r name _shown spoken _english <<<"$entry"
  speak "$name" "$spoken"
done

# ---------------------------------------------------------------------------
# hold music
# ---------------------------------------------------------------------------
notes=()
for i in "${!HOLD_NOTES[@]}"; do
  note=${HOLD_NOTES[$i]}
  f=$(printf '%s/note-%02d.wav' "$TMP" "$i")
  # Chime envelope: 20 ms attack, then a logarithmic decay over the last 450 ms, so
  # each tone rings and dies away. This keeps the average level (RMS about -25 dBFS)
  # a little under the speech prompts' (about -23 dBFS) at the -12 dBFS peak.
  "${SOX[@]}" -n "${FMT[@]}" "$f" synth "$HOLD_NOTE_S" sine "${FREQ[$note]}" \
    fade l 0.02 "$HOLD_NOTE_S" 0.45
  notes+=("$f")
done
# Concatenate, then set the peak.
"${SOX[@]}" "${notes[@]}" "${FMT[@]}" "$TMP/hold.wav" gain -n "$HOLD_PEAK"
rm -f "${notes[@]}"
check "$TMP/hold.wav" 7.5

# ---------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------
{
  cat <<EOF
# prompts/

Audio the gateway plays to callers. **Generated** by \`scripts/gen-prompts.sh\`; do not
edit by hand, rerun the script (it needs only \`espeak-ng\` and \`sox\`, no network).

The speech is espeak-ng's Mandarin voice \`$VOICE\` at rate $SPEED, so it sounds
synthetic: these files are placeholders for development and tests. A real deployment
records its own prompts and puts them here under the same names.

## Format

Every file must be WAV, **mono, 8 kHz, 16-bit PCM**. The gateway converts it to G.711
when it loads it, and rejects any other format at load with an error naming the file.

## Files

| file | plays | text | English |
| --- | --- | --- | --- |
EOF
  for entry in "${PROMPTS[@]}"; do
    IFS='|' read -r name shown _spoken english <<<"$entry"
    case $name in
      greeting)      use="answering the hotline, before queueing" ;;
      forwarded)     use="answering a call-forwarded line (an old number now served by 12345)" ;;
      survey)        use="after the agent hangs up: satisfaction survey, DTMF 1/2/3" ;;
      thanks)        use="after a survey key is pressed, before hanging up" ;;
      still-waiting) use="every so often while the caller is on hold" ;;
      number-changed) use="a line out of service (before effective_from, after effective_until), before hanging up" ;;
      *)             use="" ;;
    esac
    printf '| `%s.wav` | %s | %s | %s |\n' "$name" "$use" "$shown" "$english"
  done
  cat <<EOF
| \`hold.wav\` | music on hold, looped | (music, no speech) | 8 s of sine tones on the C pentatonic scale, peaks about $HOLD_PEAK dBFS; starts and ends in silence so it loops cleanly |

In the speech, "12345" is read digit by digit as 幺二三四五 (yāo èr sān sì wǔ), the
way Chinese phone numbers are said.
EOF
} >"$TMP/README.md"

# ---------------------------------------------------------------------------
# install: replace only what changed
# ---------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
made=()
for f in "$TMP"/*; do
  base=$(basename "$f")
  made+=("$base")
  if cmp -s "$f" "$OUT_DIR/$base"; then
    echo "unchanged  $base"
  else
    mv -f "$f" "$OUT_DIR/$base"
    echo "written    $base"
  fi
done
# Files in prompts/ that this script does not make are left alone, but named.
for f in "$OUT_DIR"/*; do
  base=$(basename "$f")
  [[ " ${made[*]} " == *" $base "* ]] || echo "gen-prompts: note: $base is not generated by this script" >&2
done
