# The two commands: `make demo` (show me) and `make test` (test it). Both set everything up.
.PHONY: demo test setup lint format htmx

demo:
	dev/demo

test:
	dev/test

setup:
	dev/setup

lint:
	.venv/bin/python -m ruff check .
	.venv/bin/python -m ruff format --check .

format:
	.venv/bin/python -m ruff check --fix .
	.venv/bin/python -m ruff format .

htmx:
	dev/refresh-htmx
