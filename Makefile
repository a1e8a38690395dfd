run:
	./scripts/run_demo.sh

test:
	./scripts/test.sh

lint:
	.venv/bin/ruff check .

.PHONY: run test lint
