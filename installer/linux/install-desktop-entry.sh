#!/bin/sh
# Adds Photo Enhancer to the desktop's application menu, pointing at this unpacked folder (for the current user only).
# Run it again after moving the folder; remove it with: rm ~/.local/share/applications/photo-enhancer.desktop
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/512x512/apps"
mkdir -p "$apps" "$icons"
cp "$here/photo-enhancer.png" "$icons/photo-enhancer.png"
sed -e "s|^Exec=enhancer-gui|Exec=\"$here/enhancer-gui\"|" "$here/photo-enhancer.desktop" >"$apps/photo-enhancer.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "Installed $apps/photo-enhancer.desktop"
