# Shorthands for ./dev, which does the real work (venv setup, chromium, tools).
.PHONY: lab test site bench setup

lab:
	./dev lab

test:
	./dev test

site:
	./dev site

bench:
	./dev bench

setup:
	./dev setup
