#!/usr/bin/env bash
# Generates the sample media that playlists/*.toml refer to (not kept in git):
# titled H.264 clips and one PNG poster per UDHR article, with GStreamer.
# Usage: deploy/sample-media.sh [OUT_DIR]   (default: playlists/media)
# Existing files are kept, so re-running is cheap.
set -euo pipefail
out=${1:-"$(dirname "$0")/../playlists/media"}
mkdir -p "$out"

font="DejaVu Sans"
# Titles are Pango markup: &#10; is a line break, <b>…</b> bold.

# clip NAME SECONDS PATTERN TITLE
clip() {
  local file="$out/$1" seconds=$2 pattern=$3 title=$4
  [[ -s "$file" ]] && return 0
  local frames=$((seconds * 25))
  gst-launch-1.0 -q \
    videotestsrc num-buffers="$frames" pattern="$pattern" \
    ! video/x-raw,width=1280,height=720,framerate=25/1 \
    ! textoverlay text="$title" font-desc="$font Bold 30" valignment=center halignment=center \
      shaded-background=true wrap-mode=word \
    ! timeoverlay font-desc="$font 18" valignment=bottom halignment=right \
    ! videoconvert ! x264enc speed-preset=ultrafast tune=zerolatency key-int-max=25 \
    ! video/x-h264,profile=constrained-baseline ! h264parse ! mp4mux \
    ! filesink location="$file.part"
  mv "$file.part" "$file"
}

# poster NAME BACKGROUND TITLE
poster() {
  local file="$out/$1" background=$2 title=$3
  [[ -s "$file" ]] && return 0
  gst-launch-1.0 -q \
    videotestsrc num-buffers=1 pattern=solid-color foreground-color="$background" \
    ! video/x-raw,width=1080,height=1080 \
    ! textoverlay text="$title" font-desc="$font 28" valignment=center halignment=center \
      wrap-mode=wordchar line-alignment=center \
    ! videoconvert ! pngenc ! filesink location="$file.part"
  mv "$file.part" "$file"
}

clip clip-01.mp4 8 smpte "Freedom from torture&#10;Свобода от пыток · Озодӣ аз шиканҷа"
clip clip-02.mp4 8 ball "Hotlines, 24 hours&#10;Khatlon 98 787 66 66&#10;Soghd 98 787 33 33&#10;Dushanbe 98 708 76 76"
clip clip-03.mp4 10 circular "The History of 13 Soldiers,&#10;or the Lost Dreams"
clip clip-04.mp4 6 pinwheel "26 June&#10;International Day in Support&#10;of Victims of Torture"
clip clip-rights-dignity-development.mp4 8 spokes "Rights! Dignity! Development!&#10;Права! Достоинство! Развитие!"
poster hotline-card.png 0xff1d3557 "Телефони боварӣ / Телефон доверия&#10;24-hour hotlines&#10;&#10;Khatlon 98 787 66 66&#10;Soghd 98 787 33 33&#10;Dushanbe 98 708 76 76"

articles=(
  "free and equal in dignity and rights"
  "freedom from discrimination"
  "life, liberty and security of person"
  "freedom from slavery"
  "freedom from torture and cruel treatment"
  "recognition as a person before the law"
  "equality before the law"
  "an effective remedy"
  "freedom from arbitrary arrest and detention"
  "a fair and public hearing"
  "presumed innocent until proved guilty"
  "privacy, family, home and correspondence"
  "freedom of movement"
  "asylum from persecution"
  "a nationality"
  "marriage and family"
  "property"
  "freedom of thought, conscience and religion"
  "freedom of opinion and expression"
  "peaceful assembly and association"
  "taking part in government"
  "social security"
  "work, fair pay, trade unions"
  "rest and leisure"
  "an adequate standard of living"
  "education"
  "cultural life"
  "an order in which these rights can be realised"
  "duties to the community"
  "no one may destroy these rights"
)
colours=(0xff264653 0xff2a9d8f 0xff8a5a00 0xffb5442a 0xff6d597a)
for i in "${!articles[@]}"; do
  n=$((i + 1))
  poster "$(printf 'poster-day-%02d.png' "$n")" "${colours[$((i % ${#colours[@]}))]}" \
    "Universal Declaration of Human Rights&#10;&#10;<b>Article $n</b>&#10;${articles[$i]}"
done
poster poster-human-rights-day.png 0xff0b3d91 "<b>10 December&#10;Human Rights Day</b>&#10;&#10;Rights! Dignity! Development!"
echo "sample media in $out"
