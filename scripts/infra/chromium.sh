#!/usr/bin/env bash
# Chromium from Debian for the browser (e2e) tests: Playwright drives /usr/bin/chromium, never a
# downloaded browser. Only installed here; each test launches its own headless instance.
source "$(dirname "$0")/lib.sh"
# fonts-liberation: without a font the screenshots show boxes instead of text.
apt_install chromium chromium fonts-liberation
say "chromium: $(chromium --version 2>/dev/null || echo missing)"
