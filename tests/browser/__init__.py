"""Helpers for tests that drive Debian's Chromium (WebGPU on SwiftShader) through Playwright."""
