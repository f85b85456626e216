"""Real-browser end-to-end tests (a package so its conftest and helpers get unique names)."""
